"""The SLO capacity model: a batched replica's latency, and square-root staffing over n."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxscale.decide.capacity import CapacityModel, ServiceTime
from voxscale.decide.units import ceil_ratio
from voxscale_lab.capacity import load_profile

STANDIN = ServiceTime(fixed_seconds=0.060, per_request_seconds=0.012, max_batch=32)
MODEL = CapacityModel(STANDIN.sustainable_rps(500.0, 0.95), 500.0, 0.95, service=STANDIN)


def test_one_replica_sustains_64_rps_at_p95_500_ms_with_the_default_profile() -> None:
    # s ≤ 0.5 / 1.95 = 256 ms -> b = 16.4 -> 16.4 / 0.256 = 64 req/s.
    assert STANDIN.sustainable_rps(500.0, 0.95) == pytest.approx(64.0, abs=0.5)
    mu = STANDIN.sustainable_rps(500.0, 0.95)
    assert STANDIN.latency_ms(mu, 0.95) == pytest.approx(500.0)
    assert load_profile().sustainable_rps == pytest.approx(STANDIN.sustainable_rps(500.0, 0.95))


def test_the_batchers_queue_delay_comes_out_of_the_latency_budget() -> None:
    slow = ServiceTime(0.060, 0.012, 32, max_queue_delay_seconds=0.1)
    assert slow.sustainable_rps(500.0, 0.95) < STANDIN.sustainable_rps(500.0, 0.95)
    assert ServiceTime(0.3, 0.0, 1).sustainable_rps(500.0, 0.95) == 0.0


@pytest.mark.parametrize(
    ("rate", "replicas"),
    [
        pytest.param(0.0, 0, id="no-load-needs-nothing"),
        pytest.param(128.0, 3, id="128-rps-is-2-replicas-of-load-plus-a-third-for-bursts"),
        pytest.param(2560.0, 42, id="2560-rps-is-40-replicas-plus-2"),
    ],
)
def test_square_root_staffing_table(rate: float, replicas: int) -> None:
    assert MODEL.replicas_for(rate) == replicas


def test_the_target_override_is_the_old_fixed_utilisation_rule() -> None:
    fixed = CapacityModel(64.0, 500.0, 0.95, target_utilization=0.7)
    assert fixed.replicas_for(2560.0) == math.ceil(2560.0 / (64.0 * 0.7))
    assert fixed.rate_for(10) == pytest.approx(448.0)


@given(st.floats(min_value=0.5, max_value=50_000.0))
def test_the_replicas_asked_for_a_rate_hold_the_slo_and_one_fewer_would_not(rate: float) -> None:
    n = MODEL.replicas_for(rate)
    assert MODEL.predicted_latency_ms(rate, n) <= 500.0 + 1e-6  # type: ignore[operator]
    assert MODEL.rate_for(n) >= rate * (1 - 1e-9)
    assert MODEL.rate_for(n - 1) < rate


def test_the_reason_names_the_models_numbers() -> None:
    line = MODEL.describe(2560.0, 42)
    assert line.startswith("63.8 rps/replica at p95 ≤ 500 ms + 117.7 rps burst headroom")
    assert "predicted p95" in line


def test_ceil_ratio_skips_the_rounding_only_where_it_cannot_change_the_ceiling() -> None:
    assert ceil_ratio(28.0, 0.7 * 20) == 2  # 2.0000000000000004 rounds to 2
    rng = np.random.default_rng(11)
    nudges = (0.0, 1e-12, -1e-12, 1e-9, -1e-9, 1e-7, -1e-7, 1e-6, -1e-6, 2e-6, 0.3)
    for _ in range(20_000):
        d = float(rng.uniform(0.1, 100.0))
        n = d * int(rng.integers(0, 500)) * (1.0 + float(rng.choice(nudges)))
        assert ceil_ratio(n, d) == (math.ceil(round(n / d, 9)) if n > 0 else 0)
