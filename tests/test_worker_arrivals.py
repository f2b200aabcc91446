"""Open-loop arrival schedules: Poisson, rate series played faster, per-request logs replayed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxscale.series import History
from voxscale_lab.traces import Trace, load_trace
from voxscale_lab.worker.arrivals import poisson_arrivals, rate_arrivals, trace_arrivals, window

TRACES = Path(__file__).resolve().parents[1] / "examples" / "traces"


def test_poisson_arrivals_average_the_requested_rate() -> None:
    arrivals = poisson_arrivals(50.0, 200.0, np.random.default_rng(7))
    # 10,000 expected; a Poisson count has sd 100, so ±5 sd is 9,500..10,500.
    assert 9500 < len(arrivals) < 10_500
    assert arrivals.min() >= 0 and arrivals.max() < 200.0


@settings(max_examples=50, deadline=None)
@given(rate=st.floats(0, 200), duration=st.floats(0, 30), seed=st.integers(0, 2**32 - 1))
def test_poisson_arrivals_are_sorted_and_inside_the_window(rate: float, duration: float, seed: int) -> None:
    arrivals = poisson_arrivals(rate, duration, np.random.default_rng(seed))
    assert np.all(np.diff(arrivals) >= 0)
    assert np.all((arrivals >= 0) & (arrivals <= duration))


def test_a_rate_series_is_played_faster_at_a_scaled_rate() -> None:
    # Two 5-minute steps at 2 and 0 req/s, 60x faster and 10x busier: 5 s at 20 req/s, then 5 s idle.
    history = History.of(0.0, 300.0, [2.0, 0.0] * 50)
    arrivals = rate_arrivals(history, np.random.default_rng(1), time_scale=60, rate_scale=10)
    steps = np.floor(arrivals / 5.0).astype(int)
    assert np.all(steps % 2 == 0), "idle steps must get no arrivals"
    assert 50 * 100 * 0.9 < len(arrivals) < 50 * 100 * 1.1


def test_steps_without_data_send_nothing_rather_than_a_guess() -> None:
    history = History.of(0.0, 1.0, [np.nan, 100.0, np.nan])
    arrivals = rate_arrivals(history, np.random.default_rng(3))
    assert np.all((arrivals >= 1.0) & (arrivals < 2.0))
    assert len(arrivals) > 50


@pytest.mark.parametrize(
    ("rate_scale", "expected"),
    [(1.0, 4), (2.0, 8), (0.0, 0)],
    ids=["as-logged", "every-request-twice", "silenced"],
)
def test_a_per_request_log_is_replayed_from_zero_and_compressed(rate_scale: float, expected: int) -> None:
    trace = Trace("log", np.array([100.0, 101.0, 104.0, 110.0]), None, None)
    arrivals = trace_arrivals(trace, np.random.default_rng(0), time_scale=2.0, rate_scale=rate_scale)
    assert len(arrivals) == expected
    if expected:
        assert sorted(set(arrivals.tolist())) == [0.0, 0.5, 2.0, 5.0]


def test_the_bundled_azure_log_becomes_an_arrival_schedule() -> None:
    trace = load_trace(TRACES / "AzureLLMInferenceTrace_conv.csv")
    arrivals = trace_arrivals(trace, np.random.default_rng(0))
    assert len(arrivals) == len(trace.arrivals)
    assert arrivals[0] == 0.0


def test_a_window_is_rebased_to_zero() -> None:
    kept = window(np.array([0.5, 1.0, 2.5, 3.0]), start=1.0, duration=2.0)
    assert kept.tolist() == [0.0, 1.5]
