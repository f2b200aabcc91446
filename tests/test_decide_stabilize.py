"""The stabilization window, bounded scale-up/scale-down, and the clamp."""

from __future__ import annotations

import pytest

from tests.test_decide_builders import T0, obs, policy
from voxscale.api import Recommendation, ScalerState
from voxscale.decide import decide
from voxscale.decide.clamp import clamp
from voxscale.decide.stabilize import limit_scale_down, limit_scale_up
from voxscale.decide.window import WINDOW_CAP, highest, prune, push


def recs(*pairs: tuple[float, int]) -> list[Recommendation]:
    return [Recommendation(at=T0 + at, replicas=n) for at, n in pairs]


# ------------------------------------------------------------------ window


def test_prune_drops_recommendations_older_than_the_window() -> None:
    kept = prune(recs((-301, 9), (-300, 8), (0, 7)), T0, 300)
    assert [r.replicas for r in kept] == [8, 7]


def test_push_drops_older_entries_a_newer_one_dominates() -> None:
    got = push(recs((0, 12), (10, 20), (20, 15)), T0 + 30, 18)
    assert [(r.at - T0, r.replicas) for r in got] == [(10, 20), (30, 18)]


def test_highest_is_the_max_inside_the_window_only() -> None:
    window = recs((-400, 50), (-200, 30), (-10, 5))
    assert highest(window, T0, 300) == 30
    assert highest([], T0, 300) is None


def test_window_stays_bounded_and_merges_conservatively() -> None:
    window: list[Recommendation] = []
    for i in range(WINDOW_CAP * 3):
        window = push(window, T0 + i, 10_000 - i)  # strictly falling: nothing dominated
    assert len(window) == WINDOW_CAP
    # The merged head holds the highest value ever pushed, at a later time: never lower.
    assert window[0].replicas == 10_000


# ------------------------------------------------------------------ scale-up


@pytest.mark.parametrize(
    ("desired", "current", "base", "expected"),
    [
        pytest.param(40, 10, 10, 20, id="at-most-100pct-of-ten"),
        pytest.param(40, 2, 2, 6, id="at-least-4-pods-for-small-shards"),
        pytest.param(13, 10, 10, 13, id="within-the-limit-goes-straight-there"),
        pytest.param(30, 10, 2, 10, id="pending-pods-give-no-allowance"),
    ],
)
def test_scale_up_is_immediate_but_bounded(
    desired: int, current: int, base: int, expected: int
) -> None:
    got = limit_scale_up(desired, current, base=base, policy=policy(), state=ScalerState(),
                         now=T0)
    assert got.replicas == expected


def test_one_scale_up_step_per_period() -> None:
    state = ScalerState(last_scale_up_at=T0)
    p = policy(scale_up_period_seconds=15)
    during = limit_scale_up(40, 20, base=20, policy=p, state=state, now=T0 + 10)
    after = limit_scale_up(40, 20, base=20, policy=p, state=state, now=T0 + 15)
    assert (during.replicas, after.replicas) == (20, 40)
    assert "waits 5 s" in during.reasons[0]


# ------------------------------------------------------------------ scale-down


@pytest.mark.parametrize(
    ("window", "desired", "current", "expected"),
    [
        pytest.param([(-100, 30), (0, 10)], 10, 30, 30, id="held-at-the-highest-of-the-window"),
        pytest.param([(-301, 30), (0, 10)], 10, 30, 15, id="old-highs-expire-then-halving"),
        pytest.param([(-100, 24), (0, 10)], 10, 30, 24, id="down-to-the-window-high"),
        pytest.param([(0, 0)], 0, 1, 0, id="one-to-zero-is-possible"),
        pytest.param([(0, 2)], 2, 3, 2, id="halving-three-drops-one"),
    ],
)
def test_scale_down_uses_the_window_high_and_at_most_halves(
    window: list[tuple[float, int]], desired: int, current: int, expected: int
) -> None:
    state = ScalerState(recommendations=recs(*window))
    replicas, _ = limit_scale_down(desired, current, policy(), state, T0)
    assert replicas == expected


def test_scale_down_waits_for_the_stabilization_window() -> None:
    p = policy(target=14.0)
    state = ScalerState()
    d = decide(obs(420.0, ready=30), None, p, state, T0)
    for i in range(1, 30):
        d = decide(obs(140.0, ready=30), None, p, d.state, T0 + 10 * i)
        assert d.replicas == 30
    assert d.reasons[-1] == "stabilize: scale-down held at 30 (highest of last 300 s)"
    d = decide(obs(140.0, ready=30), None, p, d.state, T0 + 310)
    assert d.replicas == 15


# ------------------------------------------------------------------ clamp


@pytest.mark.parametrize(
    ("replicas", "expected", "bound"),
    [
        pytest.param(0, 2, "floor", id="raised-to-min"),
        pytest.param(99, 40, "ceiling", id="lowered-to-max"),
        pytest.param(7, 7, None, id="inside-untouched"),
    ],
)
def test_clamp_keeps_replicas_within_min_and_max(
    replicas: int, expected: int, bound: str | None
) -> None:
    got = clamp(replicas, policy(min_replicas=2, max_replicas=40))
    assert (got.replicas, got.bound) == (expected, bound)


def test_no_load_rests_on_the_floor() -> None:
    d = decide(obs(0.0, ready=1), None, policy(min_replicas=1), ScalerState(), T0)
    assert (d.replicas, d.term) == (1, "floor")
