"""Traffic classes in decide(): fake-clock timelines of a batch backlog beside interactive load."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from tests.test_decide_builders import T0, obs, policy
from voxscale import names
from voxscale.api import ScalerState
from voxscale.decide import (
    Decision,
    Observation,
    PodCounts,
    Policy,
    ShardMetrics,
    decide,
    restore_state,
)
from voxscale.decide.capacity import ServiceTime
from voxscale.decide.classes import batch_capacity, plan_batch
from voxscale.decide.types import BatchClass, ClassMetrics

WARMUP = 60.0
DEADLINE = 900.0
P = policy(
    target=20.0, declared_warmup_seconds=WARMUP, interval_seconds=10, min_replicas=1,
    max_replicas=40, interactive_class="live", batch_classes=(BatchClass("offline", DEADLINE),),
)
HORIZON = WARMUP + 10  # warm-up + interval: the horizon decide() plans over


@dataclass
class MixedShard:
    """Pods that are Ready `warmup` s after creation; interactive load served first, the batch
    backlog drained FIFO by what the ready pods have left (Triton's priority levels)."""

    p: Policy = P
    created: list[float] = field(default_factory=list)
    backlog: float = 0.0
    submitted_at: float | None = None
    state: ScalerState | None = None
    log: list[tuple[float, int, float, Decision]] = field(default_factory=list)

    def ready(self, now: float) -> int:
        return sum(1 for c in self.created if now - c >= WARMUP)

    def tick(self, now: float, interactive: float, *, batch_data: bool = True) -> Decision:
        ready = self.ready(now)
        pods = PodCounts(asked=len(self.created), ready=ready, warming=len(self.created) - ready)
        oldest = now - self.submitted_at if self.backlog > 0 and self.submitted_at else 0.0
        batch = (ClassMetrics("offline", now, rate=0.0, backlog=self.backlog, oldest_seconds=oldest)
                 if batch_data else ClassMetrics("offline", now, errors=("backlog: empty result",)))
        metrics = ShardMetrics(at=now, rate=interactive, latency_ms=200.0)
        state = restore_state(self.state, ready, now)
        d = decide(Observation(metrics, pods, (batch,)), None, self.p, state, now)
        self.state = d.state
        spare = max(0.0, ready * self.p.capacity_rps - interactive) * self.p.interval_seconds
        self.backlog = max(0.0, self.backlog - spare)
        self.created.sort()
        if d.replicas > len(self.created):
            self.created.extend([now] * (d.replicas - len(self.created)))
        else:
            del self.created[d.replicas:]
        self.log.append((now, ready, self.backlog, d))
        return d

    def submit(self, requests: float, now: float) -> None:
        self.backlog += requests
        self.submitted_at = now

    def run(self, start: float, seconds: float, interactive: float) -> None:
        for i in range(int(seconds / self.p.interval_seconds)):
            self.tick(start + i * self.p.interval_seconds, interactive)


def _shard(ready: int = 2) -> MixedShard:
    return MixedShard(created=[T0 - WARMUP - 1] * ready)


def test_a_batch_backlog_scales_the_shard_up_and_completes_before_its_deadline() -> None:
    shard = _shard()
    shard.run(T0, 300, interactive=30.0)  # 30 rps at 20 per replica: 2 replicas, nothing queued
    assert shard.log[-1][3].replicas == 2
    shard.submit(60_000, T0 + 300)  # 60,000 requests due within 900 s
    shard.run(T0 + 300, 1200, interactive=30.0)
    drained = next(now for now, _, backlog, _ in shard.log if backlog == 0 and now > T0 + 300)
    assert drained <= T0 + 300 + DEADLINE, f"drained {drained - T0 - 300:.0f} s after submission"
    first = next(d for now, _, _, d in shard.log if now >= T0 + 300)
    # 60,000 / (900 − 70) s = 72.3 rps → 4 batch replicas on top of interactive's 2.
    offline = first.classes[1]
    assert (offline.name, offline.replicas, offline.at_risk) == ("offline", 4, False)
    assert first.classes[0].replicas == 2 and first.replicas == 6
    assert any("on top of interactive" in r for r in first.reasons)
    assert not any(d.class_problems for _, _, _, d in shard.log)


def test_a_backlog_that_falls_behind_asks_for_more_as_its_deadline_approaches() -> None:
    need = plan_batch((ClassMetrics("offline", T0, rate=0.0, backlog=30_000, oldest_seconds=0.0),),
                      P, ScalerState(), horizon=HORIZON).replicas
    later = plan_batch((ClassMetrics("offline", T0, rate=0.0, backlog=30_000, oldest_seconds=600.0),),
                       P, ScalerState(), horizon=HORIZON).replicas
    # The same 30,000 requests: 830 s left → 36 rps → 2; 230 s left → 130 rps → 7.
    assert (need, later) == (2, 7)


def test_once_the_backlog_drains_the_batch_replicas_are_released_after_the_window() -> None:
    shard = _shard()
    shard.submit(60_000, T0)
    shard.run(T0, 2400, interactive=30.0)
    drained = next(now for now, _, backlog, _ in shard.log if backlog == 0)
    by_time = {now: d for now, _, _, d in shard.log}
    peak = max(d.replicas for d in by_time.values())
    assert peak > 2
    # The need shrinks with the backlog and is 0 once it is gone; the count follows the
    # highest need of the 300 s window, so it is still at its peak just after the drain and
    # is back at interactive's 2 only a full window after the last batch need.
    assert by_time[drained + 10].classes[1].replicas == 0
    assert by_time[drained + 10].replicas == peak
    back = next(now for now, d in by_time.items() if now > drained and d.replicas == 2)
    assert back >= drained + 300
    assert shard.log[-1][3].replicas == 2


def test_interactive_need_is_the_same_with_or_without_a_batch_backlog() -> None:
    busy, idle = _shard(), _shard()
    busy.submit(200_000, T0)
    for i in range(60):
        now, load = T0 + 10 * i, 30.0 + 2 * i  # a ramp from 30 to 148 rps
        with_batch, alone = busy.tick(now, load), idle.tick(now, load)
        assert with_batch.classes[0].replicas == alone.classes[0].replicas
        # A batch ask many times the ready pods is a backlog to plan, not a burst to panic on.
        assert with_batch.mode == alone.mode


def test_a_batch_class_that_loses_its_data_holds_its_last_need_and_never_scales_down() -> None:
    shard = _shard()
    shard.submit(60_000, T0)
    shard.run(T0, 200, interactive=30.0)
    before = shard.log[-1][3]
    for i in range(60):  # ten minutes without the backlog series
        d = shard.tick(T0 + 200 + 10 * i, 30.0, batch_data=False)
        assert d.replicas >= before.replicas
        assert d.classes[1].replicas == before.classes[1].replicas and d.classes[1].held
    reasons = [r for r, _ in d.class_problems]
    assert reasons == [names.REASON_CLASS_METRICS_UNAVAILABLE]
    assert "no scale-down" in " ".join(d.reasons)


def test_no_batch_data_before_any_is_known_is_not_zero_it_holds_the_current_count() -> None:
    o = Observation(ShardMetrics(at=T0, rate=0.0), PodCounts(asked=8, ready=8),
                    (ClassMetrics("offline", T0, errors=("backlog: NaN",)),))
    d = decide(o, None, P, restore_state(None, 8, T0), T0 + 400)
    assert d.replicas == 8
    assert d.classes[1].replicas == 0 and d.classes[1].held
    assert "backlog: NaN" in d.class_problems[0][1]


def test_a_class_absent_from_the_observation_is_no_data() -> None:
    plan = plan_batch((), P, ScalerState(batch_needs={"offline": 5}), horizon=HORIZON)
    assert (plan.replicas, plan.hold) == (5, True)


def test_work_already_close_to_its_deadline_is_at_risk_and_says_what_to_do() -> None:
    late = ClassMetrics("offline", T0, rate=0.0, backlog=1_000, oldest_seconds=DEADLINE - 100)
    plan = plan_batch((late,), P, ScalerState(), horizon=HORIZON)
    (reason, message), = plan.problems
    assert reason == names.REASON_DEADLINE_AT_RISK
    assert "deadlineSeconds" in message and "minReplicas" in message
    # Sized to clear it within one more horizon rather than an unbounded burst: 1,000 / 70 s.
    assert plan.needs[0].required_rate == pytest.approx(1000 / HORIZON)


def test_a_backlog_beyond_max_replicas_says_to_raise_it() -> None:
    huge = ClassMetrics("offline", T0, rate=0.0, backlog=2_000_000, oldest_seconds=0.0)
    plan = plan_batch((huge,), P, ScalerState(), horizon=HORIZON)
    assert plan.problems[0][0] == names.REASON_DEADLINE_AT_RISK
    assert "above maxReplicas 40" in plan.problems[0][1]
    d = decide(Observation(ShardMetrics(at=T0, rate=0.0), PodCounts(asked=40, ready=40), (huge,)),
               None, P, restore_state(None, 40, T0), T0)
    assert d.replicas == 40 and d.term == "ceiling"


def test_arrivals_alone_need_their_throughput_and_nothing_queued_needs_nothing() -> None:
    steady = ClassMetrics("offline", T0, rate=50.0, backlog=0.0, oldest_seconds=0.0)
    assert plan_batch((steady,), P, ScalerState(), horizon=HORIZON).replicas == 3  # 50 / 20
    idle = ClassMetrics("offline", T0, rate=0.0, backlog=0.0, oldest_seconds=0.0)
    plan = plan_batch((idle,), P, ScalerState(), horizon=HORIZON)
    assert (plan.replicas, plan.hold, plan.problems) == (0, False, ())


def test_the_worked_example_runs_full_batches() -> None:
    profiled = replace(P, batch_classes=(BatchClass("offline", 3600),),
                       service=ServiceTime(0.060, 0.012, max_batch=32))
    assert batch_capacity(profiled).per_replica_rps == pytest.approx(32 / 0.444)  # 72.1 rps
    m = ClassMetrics("offline", T0, rate=40.0, backlog=9_000, oldest_seconds=1_800)
    need = plan_batch((m,), profiled, ScalerState(), horizon=130).needs[0]
    assert need.required_rate == pytest.approx(9000 / 1670 + 40)  # 45.4 rps
    assert need.replicas == 1


def test_without_classes_batch_observations_change_nothing() -> None:
    plain = policy(target=20.0)
    o = obs(rate=55.0, ready=2)
    stray = replace(o, classes=(ClassMetrics("offline", T0, backlog=1e6, oldest_seconds=0.0),))
    state = restore_state(None, 2, T0)
    assert decide(stray, None, plain, state, T0) == decide(o, None, plain, state, T0)
    assert decide(o, None, plain, state, T0).classes == ()
