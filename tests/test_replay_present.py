"""The present-knowing yardstick: its schedule by hand, its sweep, and what a step costs it."""

from __future__ import annotations

import numpy as np

from voxscale.series import History
from voxscale_lab.capacity import load_profile
from voxscale_lab.replay.policies import PolicyContext
from voxscale_lab.replay.policies.present import (
    Setting,
    cheapest_within,
    present_schedule,
    settings,
)
from voxscale_lab.replay.report import score
from voxscale_lab.replay.runner import Scenario, replay, replay_present
from voxscale_lab.replay.workload import Workload

CTX = PolicyContext(capacity_rps=10.0, warmup_seconds=120, min_replicas=1, max_replicas=50)


def test_the_schedule_asks_the_present_need_with_headroom_and_holds_it_for_the_past_only() -> None:
    rate = np.array([15.0, 15.0, 95.0, 15.0, 15.0, 15.0, 0.0])
    # +25 %: 15 req/s → ceil(18.75 / 10) = 2, 95 → 12, 0 → min_replicas 1.
    assert present_schedule(rate, CTX, Setting(0.25, 0)).tolist() == [2, 2, 12, 2, 2, 2, 1]
    # Held 2 s: the spike's 12 stays for the 2 s after it, never before it.
    assert present_schedule(rate, CTX, Setting(0.25, 2)).tolist() == [2, 2, 12, 12, 12, 2, 2]


def test_the_sweep_holds_for_the_warm_up_among_its_holds() -> None:
    swept = settings(120.0)
    assert {s.hold_seconds for s in swept} == {0, 120, 300, 900}
    assert len(swept) == 4 * len({s.headroom for s in swept})


def test_cheapest_within_a_budget() -> None:
    a, b, c = Setting(0.0, 0), Setting(0.5, 300), Setting(1.0, 900)
    points = [(a, 1.1, 30.0), (b, 1.6, 1.5), (c, 2.4, 0.0)]
    assert cheapest_within(points, 2.0).setting == b
    assert cheapest_within(points, 1.0).cost == 2.4
    assert cheapest_within(points, -1.0).cost is None


def _step() -> Workload:
    """40 req/s for 20 minutes, then 200 req/s for 20: a 5× rise no one announced."""
    rate = np.where(np.arange(2400) < 1200, 40.0, 200.0)
    arrivals = np.random.default_rng(0).poisson(rate).astype(np.float64)
    return Workload("step", 1_700_000_000.0, arrivals, rate, History.of(0, 60, []))


def test_knowing_the_present_cannot_hide_a_step_the_warm_up_makes_late() -> None:
    # The oracle starts the step's pods a warm-up early and violates nothing. The yardstick
    # sees the step when it happens: its pods come W late unless the headroom already covers
    # 5× the load, and 4× (+300 %) costs far more than the oracle and still does not.
    profile = load_profile()
    scenario = Scenario(warmup_seconds=120)
    workload = _step()
    oracle = score(replay(workload, ["oracle"], profile, scenario)[0], profile.slo_ms,
                   profile.percentile)
    assert oracle.violation_minutes_pct == 0.0
    by_setting = {s: score(run, profile.slo_ms, profile.percentile)
                  for s, run in replay_present(workload, profile, scenario)}
    bare, ample = by_setting[Setting(0.0, 0)], by_setting[Setting(3.0, 0)]
    assert 0.0 < ample.violation_minutes_pct < bare.violation_minutes_pct
    assert ample.replica_hours > 2 * oracle.replica_hours
