"""Stream-aware scale-in, pure: deletion costs from live streams, and the drain learned from sessions."""

from __future__ import annotations

import math

import pytest

from tests.helpers import spec_with
from voxscale.api import SpeechClusterSpec
from voxscale.decide.drain import DRAIN_STEP_SECONDS, clamp_drain, drain_bounds, learned_drain
from voxscale.decide.victims import INT32_MAX, UNKNOWN_COST, PodLoad, deletion_cost, rank_scale_in


def pods(*streams: float | None, ready: tuple[bool, ...] | None = None) -> list[PodLoad]:
    """Pods p0, p1, ... with these live streams (None = no data), Ready unless `ready` says not."""
    flags = ready or (True,) * len(streams)
    return [PodLoad(f"p{i}", s, r) for i, (s, r) in enumerate(zip(streams, flags, strict=True))]


# name -> (pods, how many to remove, the victims' names in the controller's order)
SCENARIOS: dict[str, tuple[list[PodLoad], int, list[str]]] = {
    "6 -> 2: the four with fewest streams go": (pods(5, 0, 9, 2, 0, 1), 4, ["p1", "p4", "p5", "p3"]),
    "unknown streams count as busy, never idle": (pods(None, 3, None, 0), 2, ["p3", "p1"]),
    "all unknown: equal costs, the controller's tie-break": (pods(None, None, None), 1, ["p0"]),
    "a warming pod goes before an idle Ready one": (pods(0, 4, ready=(True, False)), 1, ["p1"]),
    "a fraction of a stream is a stream": (pods(0.4, 0), 1, ["p1"]),
    "NaN and negative are no data": (pods(math.nan, -1, 7), 1, ["p2"]),
    "nothing to remove": (pods(1, 2), 0, []),
    "more to remove than pods: all of them": (pods(1, 2), 5, ["p0", "p1"]),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scale_in_removes_the_idlest_pods_first(name: str) -> None:
    given, remove, victims = SCENARIOS[name]
    plan = rank_scale_in(given, remove)
    assert [p.name for p in plan.victims] == victims
    assert set(plan.costs) == {p.name for p in given}


@pytest.mark.parametrize(
    ("streams", "cost"),
    [(0, 0), (7, 7), (2.4, 3), (None, UNKNOWN_COST), (math.nan, UNKNOWN_COST), (math.inf, UNKNOWN_COST),
     (-2, UNKNOWN_COST), (1e12, INT32_MAX - 1)],
)
def test_deletion_cost_is_the_live_streams_as_an_int32_and_unknown_is_the_highest(
    streams: float | None, cost: int
) -> None:
    assert deletion_cost(streams) == cost
    assert -(2**31) <= cost <= INT32_MAX


def test_fewer_streams_always_cost_less_and_unknown_costs_more_than_any_known() -> None:
    costs = [deletion_cost(s) for s in (0, 1, 2, 10, 4096, None)]
    assert costs == sorted(costs) and len(set(costs)) == len(costs)


def test_the_summary_lists_the_victims_streams_and_marks_unknown() -> None:
    plan = rank_scale_in(pods(5, 0, None, 2, 0, 1), 4)
    assert plan.summary() == "removing pods with 0, 0, 1, 2 live streams"
    assert rank_scale_in(pods(None, None), 1).summary() == "removing pods with ? live streams"


def test_only_changed_annotations_are_patched() -> None:
    given = [PodLoad("a", 0, True, "0"), PodLoad("b", 3, True, "1"), PodLoad("c", None, True, None)]
    plan = rank_scale_in(given, 1)
    assert plan.changed(given) == [("b", "3"), ("c", str(UNKNOWN_COST))]


# ------------------------------------------------------------------------------- drain time

STREAMING = {"maxConcurrentSequencesPerReplica": 8, "sessionIdleTimeoutSeconds": 10, "maxSessionSeconds": 600}


def streaming(drain: int = 30, max_session: int = 600) -> SpeechClusterSpec:
    return spec_with(streaming={**STREAMING, "maxSessionSeconds": max_session},
                     scaling={"scaleDown": {"drainSeconds": drain}})


# name -> (p99 seconds, previous drain, learned drain); drainSeconds 30, maxSessionSeconds 600
DRAIN: dict[str, tuple[float | None, int | None, int]] = {
    "p99 212 s rounds up to the next step": (212.0, None, 240),
    "never below drainSeconds": (4.0, None, 30),
    "never above maxSessionSeconds": (5000.0, None, 600),
    "no data keeps the previous": (None, 240, 240),
    "no data and nothing learned: the floor": (None, None, 30),
    "NaN is no data": (math.nan, 180, 180),
    "one step down is kept (no rollout for a wobble)": (190.0, 240, 240),
    "two steps down falls": (170.0, 240, 180),
    "a rise is taken at once": (250.0, 240, 270),
    "a previous value above a lowered ceiling is clamped": (None, 900, 600),
}


@pytest.mark.parametrize("name", DRAIN)
def test_the_drain_is_the_learned_p99_session_within_the_specs_bounds(name: str) -> None:
    p99, previous, expected = DRAIN[name]
    assert learned_drain(p99, previous, streaming()) == expected


def test_drain_steps_are_whole_steps() -> None:
    assert learned_drain(31.0, None, streaming()) == 2 * DRAIN_STEP_SECONDS


def test_without_streaming_the_drain_is_drain_seconds() -> None:
    plain = spec_with(scaling={"scaleDown": {"drainSeconds": 45}})
    assert drain_bounds(plain) == (45, 45)
    assert clamp_drain(300, plain) == clamp_drain(None, plain) == 45


def test_a_max_session_below_drain_seconds_never_lowers_the_floor() -> None:
    spec = streaming(drain=60, max_session=20)
    assert drain_bounds(spec) == (60, 60)
