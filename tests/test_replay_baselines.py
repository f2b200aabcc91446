"""Each replay baseline against a hand-worked timeline from its documentation; the oracle bounds cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxscale.series import History
from voxscale_lab.capacity import load_profile
from voxscale_lab.replay.policies import BASELINES, PolicyContext, build_policy
from voxscale_lab.replay.policies.aws import AWSPredictive, hourly_forecast
from voxscale_lab.replay.policies.hpa import HPA, resource_replicas
from voxscale_lab.replay.policies.keda import KEDA
from voxscale_lab.replay.policies.kpa import KPA
from voxscale_lab.replay.policies.oracle import oracle_schedule
from voxscale_lab.replay.report import score
from voxscale_lab.replay.runner import Scenario, context, replay
from voxscale_lab.replay.workload import Workload

# 10 req/s per replica at the SLO, 70 % target: 7 req/s per replica.
CTX = PolicyContext(capacity_rps=10.0, warmup_seconds=120, target_utilization=0.7,
                    max_replicas=100, initial_replicas=10)


@dataclass
class FakeView:
    """Just what the baselines read: pods, and one number per metric whatever the window."""

    ready: int = 10
    warming: int = 0
    util: float | None = 0.7
    rate: float | None = 70.0
    panic_rate: float | None = None

    def utilisation(self, seconds: float, per_replica_rps: float) -> float | None:
        return self.util

    def arrival_rate(self, seconds: float) -> float | None:
        if seconds <= 6 and self.panic_rate is not None:
            return self.panic_rate
        return self.rate


def test_hpa_scale_down_waits_for_the_300_s_stabilization_window() -> None:
    hpa, view = HPA(CTX), FakeView()
    timeline = {}
    for t in range(0, 400, 15):
        # Load halves at t = 60: the raw recommendation becomes ceil(0.5 × 10) = 5.
        view.util = 0.7 if t < 60 else 0.35
        view.ready = replicas = hpa.step(float(t), view)  # type: ignore[arg-type]
        timeline[t] = replicas
    # The last 10 was recommended at t = 45; it leaves the window at 45 + 300 = 345.
    assert timeline[330] == 10
    assert timeline[345] == 5


@pytest.mark.parametrize(
    ("util", "ready", "unready", "expected"),
    [
        pytest.param(0.75, 10, 0, 10, id="inside the 10% tolerance holds"),
        pytest.param(1.4, 10, 0, 20, id="double the target doubles the pods"),
        pytest.param(1.0, 4, 4, 8, id="unready pods at 0% cancel the scale-up"),
        pytest.param(2.8, 4, 4, 16, id="unready pods at 0% shrink the scale-up"),
        pytest.param(0.35, 4, 4, 2, id="scale-down counts only ready pods"),
    ],
)
def test_hpa_replica_calculator(util: float, ready: int, unready: int, expected: int) -> None:
    assert resource_replicas(util, 0.7, ready, unready) == expected


def test_hpa_scale_up_is_limited_to_4_pods_or_100_percent_per_15_s() -> None:
    hpa = HPA(CTX)
    view = FakeView(ready=2, util=5.0)  # wants ceil(5 / 0.7 × 2) = 15
    assert hpa.step(0.0, view) == 6  # type: ignore[arg-type]  # max(2 × 2, 2 + 4)
    view.ready = 6
    assert hpa.step(15.0, view) == 12  # type: ignore[arg-type]  # max(6 × 2, 6 + 4)


def test_keda_average_value_counts_warming_pods_and_respects_tolerance() -> None:
    keda = KEDA(CTX)
    # 73 req/s over 10 pods at 7 each is ratio 1.04: inside the tolerance, hold.
    assert keda.step(0.0, FakeView(ready=6, warming=4, rate=73.0)) == 10  # type: ignore[arg-type]
    # 150 req/s: ceil(150 / 7) = 22, limited to max(10 × 2, 10 + 4) = 20 in one sync.
    assert keda.step(15.0, FakeView(ready=6, warming=4, rate=150.0)) == 20  # type: ignore[arg-type]


def test_kpa_panics_at_twice_the_ready_pods_and_never_scales_down_while_panicking() -> None:
    kpa = KPA(CTX)
    # 10 ready; the 6-s window asks ceil(140 / 7) = 20 = 2 × ready: panic, scale on it.
    assert kpa.scale(0.0, stable=70.0, panic=140.0, ready_pods=10) == 20
    # Burst over (stable window still says 10): panic holds the 20 for a stable window.
    assert kpa.scale(30.0, stable=70.0, panic=70.0, ready_pods=20) == 20
    assert kpa.scale(60.0, stable=70.0, panic=70.0, ready_pods=20) == 20
    # 60 s after the last over-threshold tick panic ends; scale down at most to ready / 2.
    assert kpa.scale(62.0, stable=70.0, panic=70.0, ready_pods=20) == 10


def test_kpa_just_under_twice_the_ready_pods_does_not_panic() -> None:
    kpa = KPA(CTX)
    assert kpa.scale(0.0, stable=70.0, panic=133.0, ready_pods=10) == 10  # 19 / 10 < 2
    assert kpa.panic_time is None


def test_kpa_scale_down_rate_2_halves_at_most_per_decision() -> None:
    kpa = KPA(CTX)
    assert kpa.scale(0.0, stable=0.0, panic=0.0, ready_pods=40) == 20
    assert kpa.scale(2.0, stable=0.0, panic=0.0, ready_pods=20) == 10
    assert kpa.scale(4.0, stable=0.0, panic=0.0, ready_pods=5) == 2


def test_aws_forecast_is_the_mean_of_the_same_hour_over_past_days() -> None:
    hourly = np.tile(np.arange(24, dtype=np.float64), 3)
    hourly[24 + 5] = 50.0  # one unusual 05:00 on day 2
    fc = hourly_forecast(hourly, first_hour=0, hours=48)
    assert fc[72 + 5] == pytest.approx((5 + 50 + 5) / 3)
    assert fc[72 + 23] == pytest.approx(23.0)
    assert hourly_forecast(hourly[:23], first_hour=0, hours=48) == {}


def test_aws_predictive_launches_the_next_hour_a_buffer_early() -> None:
    aws = AWSPredictive(CTX)
    aws.forecast = {10: 70.0, 11: 140.0}
    assert aws._predicted(10 * 3600.0 + 3000) == 10  # 10:50: only hour 10 (70 / 7)
    assert aws._predicted(11 * 3600.0 - 120) == 20  # 10:58 with a 120 s buffer: hour 11


def test_aws_target_tracking_scales_out_after_3_minutes_above_target() -> None:
    aws = AWSPredictive(CTX)
    view = FakeView(ready=10, rate=140.0)
    assert aws._track(60.0, view) == 10  # type: ignore[arg-type]
    assert aws._track(120.0, view) == 10  # type: ignore[arg-type]
    assert aws._track(180.0, view) == 20  # type: ignore[arg-type]


def test_oracle_schedule_bridges_short_gaps_and_starts_a_warm_up_early() -> None:
    need = np.array([0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 2, 0])
    # Level 1: spells [4,6) and [7,8) merge (gap 1 ≤ W = 2), then [12,13) after a gap of 4:
    # restart 2 s early. Level 2: [12,13), started at 10.
    assert oracle_schedule(need, warmup=2, initial=0).tolist() == [
        0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 2, 2, 2, 0,
    ]


@settings(max_examples=60, deadline=None)
@given(
    need=st.lists(st.integers(0, 4), min_size=1, max_size=60),
    slack=st.lists(st.integers(0, 2), min_size=60, max_size=60),
    warmup=st.integers(0, 8),
)
def test_oracle_costs_no_more_than_any_schedule_that_always_covers_the_need(
    need: list[int], slack: list[int], warmup: int
) -> None:
    n = np.array(need)
    # Any feasible plan: Ready ≥ need every second; a replica Ready at t was paid from t − W.
    ready = n + np.array(slack[: len(n)])
    paid = ready.copy()
    for t in range(len(n)):
        lo = max(0, t - warmup)
        paid[lo:t] = np.maximum(paid[lo:t], ready[t])
    assert oracle_schedule(n, warmup, initial=0).sum() <= paid.sum()


def _diurnal(hours: float = 6.0) -> Workload:
    t = np.arange(int(hours * 3600))
    rate = 800 + 600 * np.sin(2 * np.pi * t / (4 * 3600)) + 300 * (t % 3600 > 3000)
    arrivals = np.random.default_rng(0).poisson(rate).astype(np.float64)
    return Workload("diurnal", 1_700_000_000.0, arrivals, rate, History.of(0, 60, []))


def test_the_oracle_never_costs_more_than_the_baselines_on_the_same_run() -> None:
    profile = load_profile()
    runs = replay(_diurnal(), [*BASELINES, "oracle"], profile, Scenario(warmup_seconds=120))
    cost = {r.policy: score(r, profile.slo_ms, profile.percentile).replica_hours for r in runs}
    assert all(cost["oracle"] <= c for c in cost.values())
    assert score(runs[-1], profile.slo_ms, profile.percentile).violation_minutes_pct == 0.0


def test_every_setting_of_a_sweep_starts_from_the_same_running_shard() -> None:
    # The scenario's target is the baselines' knob; the shard the replay starts from is not.
    profile, work = load_profile(), _diurnal(1.0)
    starts = {context(profile, work, Scenario(target_utilization=u)).initial_replicas
              for u in (0.5, 0.7, 0.9)}
    assert len(starts) == 1
    assert context(profile, work, Scenario(target_utilization=0.9)).target_utilization == 0.9


def test_build_policy_rejects_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        build_policy("magic", CTX, _diurnal(0.1))
