"""Tiny builders for decide() tests, and a fake shard whose pods become Ready after a warm-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from voxscale.api import ScalerState
from voxscale.decide import (
    Decision,
    Forecast,
    Observation,
    PodCounts,
    Policy,
    ShardMetrics,
    decide,
    horizon_seconds,
    record_warmups,
    restore_state,
)

T0 = 1_700_000_000.0
"""A fixed 'now' for the fake clock (2023-11-14)."""


def policy(target: float = 14.0, **overrides: Any) -> Policy:
    """A policy where one replica carries `target` rps (capacity `target`, utilisation 1.0)."""
    return replace(Policy(capacity_rps=target, target_utilization=1.0), **overrides)


def obs(
    rate: float | None = 0.0,
    *,
    panic_rate: float | None = None,
    latency: float | None = None,
    ready: int = 1,
    warming: int = 0,
    pending: int = 0,
    asked: int | None = None,
    at: float = T0,
    errors: tuple[str, ...] = (),
) -> Observation:
    """An observation; `asked` (what voxscale last asked for) defaults to all its pods."""
    pods = PodCounts(
        asked=ready + warming + pending if asked is None else asked,
        ready=ready,
        warming=warming,
        pending=pending,
    )
    metrics = ShardMetrics(at=at, rate=rate, panic_rate=panic_rate, latency_ms=latency,
                           errors=errors)
    return Observation(metrics, pods)


def forecast(
    upper: float,
    *,
    mean: float | None = None,
    current: float | None = None,
    at: float = T0,
    horizon: float = 70.0,
    calibrated: bool = False,
) -> Forecast:
    return Forecast(
        at=at, horizon_seconds=horizon, mean=upper if mean is None else mean, upper=upper,
        method="fake", current=current, calibrated=calibrated,
    )


def latency_of(load: float, ready: int, p: Policy) -> float | None:
    """A serving model: at utilisation u of the ready pods' capacity, latency is
    SLO × (0.4 + 0.6u) up to u = 1 (capacity is 'what one replica sustains at the SLO') and
    SLO × u² beyond, as queues build. No ready pods: no latency series at all."""
    if ready == 0:
        return None
    u = load / (ready * p.capacity_rps)
    return p.slo_latency_ms * (0.4 + 0.6 * u if u <= 1 else u * u)


@dataclass
class FakeShard:
    """Pods with creation times; a pod is Ready `warmup` seconds after it is created.
    Scale-down removes the youngest pods first (what a ReplicaSet does: unready ones first)."""

    p: Policy
    warmup: float
    created: list[float] = field(default_factory=list)
    state: ScalerState | None = None
    history: list[tuple[float, float, int, int, Decision]] = field(default_factory=list)
    windows: tuple[float, float | None] | None = None
    """(stable, panic) seconds: report the served load averaged over each past window, as
    Prometheus's rate() over them would (panic None: no panic-window series), and no latency,
    instead of this instant's load and latency."""

    @classmethod
    def with_ready(cls, p: Policy, warmup: float, ready: int, now: float = T0) -> FakeShard:
        return cls(p, warmup, [now - warmup - 1.0] * ready)

    def ready(self, now: float) -> int:
        return sum(1 for c in self.created if now - c >= self.warmup)

    def pods(self, now: float) -> PodCounts:
        ready = self.ready(now)
        return PodCounts(asked=len(self.created), ready=ready, warming=len(self.created) - ready)

    def tick(
        self,
        now: float,
        load: float,
        forecaster: Callable[[float, float], Forecast | None] = lambda now, h: None,
        metrics_ok: bool = True,
        past: Callable[[float], float] | None = None,
    ) -> Decision:
        pods = self.pods(now)
        state = restore_state(self.state, pods.ready, now)
        # What the loop does: pods that turned Ready since the last tick report created→Ready.
        last = self.history[-1][0] if self.history else None
        if last is not None:
            became = [c for c in self.created if last < c + self.warmup <= now]
            state = record_warmups(state, [self.warmup] * len(became))
        served = min(load, pods.ready * self.p.capacity_rps)
        if not metrics_ok:
            metrics = ShardMetrics(at=now, errors=("prometheus: connection refused",))
        elif self.windows is not None and past is not None:
            metrics = self._windowed(now, pods.ready, past, *self.windows)
        else:
            metrics = ShardMetrics(at=now, rate=served, latency_ms=latency_of(load, pods.ready, self.p))
        fc = forecaster(now, horizon_seconds(self.p, state))
        d = decide(Observation(metrics, pods), fc, self.p, state, now)
        self.state = d.state
        self._apply(d.replicas, now)
        self.history.append((now, load, pods.ready, pods.warming, d))
        return d

    def _windowed(self, now: float, ready: int, past: Callable[[float], float], stable: float,
                  panic: float | None) -> ShardMetrics:
        """Served load, second by second over each window (at the pods Ready now), averaged."""
        cap = ready * self.p.capacity_rps

        def mean(seconds: float) -> float:
            n = int(seconds)
            return sum(min(past(now - s), cap) for s in range(1, n + 1)) / n

        return ShardMetrics(at=now, rate=mean(stable),
                            panic_rate=None if panic is None else mean(panic))

    def _apply(self, replicas: int, now: float) -> None:
        self.created.sort()
        if replicas > len(self.created):
            self.created.extend([now] * (replicas - len(self.created)))
        else:
            del self.created[replicas:]

    def run(
        self,
        start: float,
        seconds: float,
        load: Callable[[float], float],
        forecaster: Callable[[float, float], Forecast | None] = lambda now, h: None,
        metrics_ok: Callable[[float], bool] = lambda now: True,
    ) -> None:
        """Tick every policy interval from `start` for `seconds`; the forecaster gets (now, h)."""
        steps = int(seconds / self.p.interval_seconds)
        for i in range(steps):
            now = start + i * self.p.interval_seconds
            self.tick(now, load(now), forecaster, metrics_ok(now), past=load)


def oracle(
    load: Callable[[float], float], margin: float = 1.1
) -> Callable[[float, float], Forecast]:
    """A forecaster that knows the future: upper = margin × the highest load over [now, now+h],
    a band as good as calibrated (it never misses)."""

    def fc(now: float, h: float) -> Forecast:
        peak = max(load(now + s) for s in range(0, int(h) + 1, 5))
        return forecast(upper=margin * peak, at=now, horizon=h, calibrated=True)

    return fc


# ------------------------------------------------------- the builders' own behaviour


def test_obs_defaults_the_deployment_size_to_all_its_pods() -> None:
    o = obs(rate=10.0, ready=3, warming=2, pending=1)
    assert o.pods.asked == 6
    assert o.metrics.usable


def test_policy_target_is_the_rate_one_replica_carries() -> None:
    assert policy(target=100).capacity.rate_for(1) == 100


def test_fake_pods_become_ready_only_after_the_warmup() -> None:
    shard = FakeShard(policy(), warmup=60.0, created=[T0])
    assert shard.pods(T0 + 59).ready == 0
    assert shard.pods(T0 + 59).warming == 1
    assert shard.pods(T0 + 60).ready == 1


def test_fake_scale_down_removes_warming_pods_first() -> None:
    shard = FakeShard(policy(), warmup=60.0, created=[T0 - 100, T0])
    shard._apply(1, T0 + 10)
    assert shard.pods(T0 + 10) == PodCounts(asked=1, ready=1, warming=0)


def test_latency_model_meets_the_slo_exactly_at_capacity() -> None:
    p = policy(target=10.0, slo_latency_ms=500.0)
    assert latency_of(20.0, 2, p) == 500.0
    assert latency_of(40.0, 2, p) == 2000.0
    assert latency_of(5.0, 0, p) is None
