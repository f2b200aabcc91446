"""The daemon's cycle on a fake clock: tick, act, patch status, re-apply, sleep out the interval,
and on stop close the cluster's Prometheus source and forget the cluster."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tests.helpers import FakeMetrics, RecordingKube, spec_with
from voxscale import handlers, names
from voxscale.api import SpeechClusterSpec
from voxscale.decide.types import ShardMetrics
from voxscale.loop import ClusterRef, Loop
from voxscale.metrics.protocol import ShardSelector
from voxscale.sources import SourceCache

NOW = 1_700_000_000.0


@dataclass
class FakeClock:
    """Wall and monotonic time at once: only `FakeStopped.wait` and a slow source move it."""

    t: float = NOW

    def __call__(self) -> float:
        return self.t


@dataclass
class FakeStopped:
    """kopf's DaemonStopped: wait(n) advances the clock n seconds; stopped after `waits` of them."""

    clock: FakeClock
    waits: int
    slept: list[float] = field(default_factory=list)

    def __bool__(self) -> bool:
        return len(self.slept) >= self.waits

    async def wait(self, timeout: float | None = None) -> FakeStopped:
        assert timeout is not None, "the daemon always sleeps a bounded time"
        self.slept.append(timeout)
        self.clock.t += timeout
        return self


@dataclass
class SlowMetrics(FakeMetrics):
    """A source whose answer takes `seconds` of (fake) time, and that notes when it was asked."""

    clock: FakeClock = field(default_factory=FakeClock)
    seconds: float = 0.0
    asked_at: list[float] = field(default_factory=list)

    def observe(self, selector: ShardSelector, now: float) -> ShardMetrics:
        self.asked_at.append(now)
        self.clock.t += self.seconds
        return super().observe(selector, now)


def _spec() -> SpeechClusterSpec:
    # One shard, so the source is asked once per tick; forecast off: this is about the cycle.
    return spec_with(
        scaling={"intervalSeconds": 10, "maxReplicas": 40, "forecast": {"enabled": False}},
        shards=[{"name": "eu-en", "region": "eu-west", "languages": ["en"]}],
    )


def _body() -> dict[str, Any]:
    spec = _spec().model_dump(by_alias=True, mode="json", exclude_none=True)
    meta = {"name": "asr", "namespace": "speech", "uid": "u-daemon", "generation": 1}
    return {"apiVersion": names.API_VERSION, "kind": names.KIND, "metadata": meta, "spec": spec}


def _run(ticks: int, source_seconds: float) -> tuple[RecordingKube, Loop, SlowMetrics,
                                                      SourceCache, FakeStopped]:
    clock = FakeClock()
    kube, metrics = RecordingKube(), SlowMetrics({"eu-en": 140.0}, clock=clock, seconds=source_seconds)
    loop, stopped = Loop(kube), FakeStopped(clock, waits=ticks)
    sources = SourceCache(build=lambda spec, token: metrics)
    asyncio.run(handlers.run_daemon(_body(), kube, loop, sources, stopped, now=clock, monotonic=clock))
    return kube, loop, metrics, sources, stopped


def test_three_ticks_scale_the_shard_patch_status_each_time_and_sleep_out_the_interval() -> None:
    # The source takes 3 s of each 10 s interval: the daemon sleeps the other 7.
    kube, _, metrics, _, stopped = _run(ticks=3, source_seconds=3.0)
    assert metrics.asked_at == [NOW, NOW + 10, NOW + 20]
    assert stopped.slept == [7.0, 7.0, 7.0]
    assert len(kube.statuses) == 3
    assert all(s["shards"][0]["name"] == "eu-en" for s in kube.statuses)
    # 140 req/s at 60 per replica needs more than the 2 running: applied on the first tick.
    assert kube.scaled and kube.scaled[0][0] == "asr-eu-en" and kube.replicas["asr-eu-en"] > 2
    assert kube.statuses[-1]["shards"][0]["replicas"] == kube.replicas["asr-eu-en"]


def test_a_tick_longer_than_the_interval_is_followed_by_a_half_second_pause_not_a_busy_loop() -> None:
    _, _, metrics, _, stopped = _run(ticks=2, source_seconds=12.0)
    assert stopped.slept == [0.5, 0.5]
    assert metrics.asked_at == [NOW, NOW + 12.5]


def test_owned_objects_are_re_applied_once_a_minute_not_every_tick() -> None:
    kube, *_ = _run(ticks=7, source_seconds=0.0)
    # Ticks at 0, 10, ..., 60 s: the re-apply is due after the one at 60 s, and only then.
    assert [o["kind"] for o in kube.applied] == ["ConfigMap", "Service", "PodDisruptionBudget", "Deployment"]


def test_on_stop_the_source_is_closed_and_the_cluster_forgotten() -> None:
    _, loop, metrics, sources, _ = _run(ticks=2, source_seconds=0.0)
    assert metrics.closed and sources.source is None
    assert loop.shards(ClusterRef.of(_body())) == set() and loop.states == {}


def test_a_daemon_cancelled_mid_tick_still_closes_its_source() -> None:
    clock = FakeClock()
    kube, metrics = RecordingKube(), FakeMetrics({"eu-en": 140.0})
    sources = SourceCache(build=lambda spec, token: metrics)

    async def cancelled() -> None:
        daemon = asyncio.create_task(handlers.run_daemon(
            _body(), kube, Loop(kube), sources, FakeStopped(clock, waits=10**6), now=clock, monotonic=clock
        ))
        while not kube.statuses:  # let it tick once
            await asyncio.sleep(0.01)
        daemon.cancel()  # kopf's cancellation_timeout ran out
        await asyncio.gather(daemon, return_exceptions=True)

    asyncio.run(cancelled())
    assert metrics.closed and sources.source is None


def test_after_a_tick_that_finds_a_region_without_ready_workers_the_route_fails_over_once() -> None:
    spec = spec_with(
        scaling={"intervalSeconds": 10, "maxReplicas": 40, "forecast": {"enabled": False}},
        shards=[{"name": "eu-en", "region": "eu-west", "languages": ["en"]},
                {"name": "us-en", "region": "us-east", "languages": ["en"]}],
        routing={"parentRefs": [{"name": "gw"}]},
    )
    body = {**_body(), "spec": spec.model_dump(by_alias=True, mode="json", exclude_none=True), "status": {
        "routing": {"kind": "GRPCRoute", "name": "asr", "routed": True, "reason": "RoutesApplied"}}}
    kube = RecordingKube(ready={"asr-eu-en": 0})
    loop, seen = Loop(kube), set[str]()
    sources = SourceCache(build=lambda spec, token: FakeMetrics({"eu-en": 10.0, "us-en": 10.0}))

    def tick(at: float) -> list[dict[str, Any]]:
        asyncio.run(handlers._tick_once(body, kube, loop, sources, now=at, established=seen))
        return [o for o in kube.applied if o["kind"] == "GRPCRoute"]

    # eu-en's first pods still warming: a start, not an outage; nothing routed away.
    assert tick(NOW) == [] and seen == {"us-en"}
    kube.ready["asr-eu-en"] = 2
    assert tick(NOW + 10) == [] and seen == {"eu-en", "us-en"}
    kube.ready["asr-eu-en"] = 0  # its workers died
    [route] = tick(NOW + 20)
    assert [r["name"] for r in route["spec"]["rules"]] == ["us-en"]  # en of eu-west included
    [routing] = [s["routing"] for s in kube.statuses if s.get("routing")]
    assert [(f["from"], f["to"]) for f in routing["failovers"]] == [("eu-en", "us-en")]
    assert [r for _, r, _ in kube.events if r == names.REASON_FAILED_OVER] == [names.REASON_FAILED_OVER]
