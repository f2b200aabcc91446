"""Learned warm-up, horizon and the warm-up sample buffer."""

from __future__ import annotations

import math

import pytest

from tests.test_decide_builders import policy
from voxscale.api import ScalerState
from voxscale.decide import horizon_seconds, learned_warmup_seconds, record_warmups
from voxscale.decide.warmup import WARMUP_SAMPLES_KEPT


@pytest.mark.parametrize(
    ("declared", "samples", "expected"),
    [
        pytest.param(60, [], 60.0, id="no-samples-uses-the-declared-warmup"),
        pytest.param(60, [90.0], 90.0, id="one-slow-sample-is-the-p90"),
        pytest.param(60, [30.0, 40.0, 50.0], 60.0, id="faster-than-declared-never-goes-below-it"),
        pytest.param(
            60, [100.0] * 9 + [600.0], 100.0, id="one-outlier-in-ten-is-ignored-by-the-p90"
        ),
        pytest.param(
            60, [100.0] * 8 + [600.0, 600.0], 600.0, id="two-outliers-in-ten-are-the-p90"
        ),
        pytest.param(0, [float(s) for s in range(1, 21)], 18.0, id="nearest-rank-of-twenty"),
    ],
)
def test_learned_warmup_is_the_p90_never_below_declared(
    declared: int, samples: list[float], expected: float
) -> None:
    state = ScalerState(warmup_samples=samples)
    assert learned_warmup_seconds(policy(declared_warmup_seconds=declared), state) == expected


def test_horizon_is_the_learned_warmup_plus_one_interval() -> None:
    state = ScalerState(warmup_samples=[120.0])
    p = policy(declared_warmup_seconds=60, interval_seconds=10)
    assert horizon_seconds(p, state) == 130.0


def test_record_warmups_appends_newest_last_and_keeps_only_the_newest() -> None:
    state = ScalerState(warmup_samples=[float(i) for i in range(WARMUP_SAMPLES_KEPT)])
    after = record_warmups(state, [500.0, 501.0])
    assert len(after.warmup_samples) == WARMUP_SAMPLES_KEPT
    assert after.warmup_samples[-2:] == [500.0, 501.0]
    assert after.warmup_samples[0] == 2.0


def test_record_warmups_drops_impossible_samples_and_does_not_mutate_its_input() -> None:
    state = ScalerState(warmup_samples=[70.0])
    after = record_warmups(state, [math.nan, -1.0, math.inf, 80.0])
    assert after.warmup_samples == [70.0, 80.0]
    assert state.warmup_samples == [70.0]


def test_record_warmups_with_nothing_new_returns_the_same_state() -> None:
    state = ScalerState(warmup_samples=[70.0])
    assert record_warmups(state, []) is state
