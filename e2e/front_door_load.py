"""Interactive load through a real HAProxy front door that follows the operator's HTTPRoute.

`Load` sends Poisson arrivals over HTTP, at a rate or rising linearly to it, and keeps every
answer with the model that gave it. `Follower` keeps the door on what the operator wrote: every
second the HTTPRoute and SpeechCluster are read back, the door re-translated from the route (a
seamless reload when it changed) and given the bridge's workers, and the fallback share that the
route, the status and the operator's metric show is sampled.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from e2e.operator_process import shard_status
from voxscale import names
from voxscale_lab.devcluster import Kubectl
from voxscale_lab.harness.front_door import Endpoint
from voxscale_lab.harness.haproxy import FrontDoor
from voxscale_lab.worker.loadgen import chunk_audio

AUDIO = chunk_audio(0.01).tolist()


@dataclass(frozen=True)
class Answer:
    sent: float
    seconds: float
    status: int
    model: str | None

    def within(self, slo_ms: float) -> bool:
        return self.status == 200 and self.seconds * 1000 <= slo_ms


@dataclass
class Load:
    """Poisson arrivals to `url`, on an event loop in a thread: at `rate`, or rising linearly to
    it from `ramp_from` over `ramp_seconds`; `offer` restarts the arrivals from `seed`, so every
    phase gets the same ones."""

    url: str
    headers: dict[str, str]
    seed: int
    ramp_seconds: float
    rate: float = 0.0
    ramp_from: float | None = None
    _since: float = 0.0
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _rng: random.Random = field(init=False)
    _next: float = 0.0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def offer(self, rate: float, ramp_from: float | None = None) -> float:
        self._rng, self._next, self.rate = random.Random(self.seed), time.monotonic(), rate
        self._since, self.ramp_from = self._next, ramp_from
        return self._next

    def rate_at(self, t: float) -> float:
        if self.ramp_from is None or t - self._since >= self.ramp_seconds:
            return self.rate
        return self.ramp_from + (self.rate - self.ramp_from) * (t - self._since) / self.ramp_seconds

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        limits = httpx.Limits(max_connections=4000, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
            while not self.stop.is_set():
                while self.rate > 0 and self._next <= time.monotonic():
                    task = asyncio.create_task(self._one(client, self._next))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    self._next += self._rng.expovariate(self.rate_at(self._next))
                await asyncio.sleep(0.005)
            if tasks:
                await asyncio.gather(*tasks)

    async def _one(self, client: httpx.AsyncClient, sent: float) -> None:
        body = {"inputs": [{"name": "AUDIO", "shape": [1, len(AUDIO)], "datatype": "FP32", "data": AUDIO}]}
        try:
            r = await client.post(self.url, json=body, headers=self.headers)
            status, model = r.status_code, (r.json().get("model_name") if r.status_code == 200 else None)
        except httpx.HTTPError:
            status, model = 0, None
        self.answers.append(Answer(sent, time.monotonic() - sent, status, model))


def sent_between(answers: list[Answer], start: float, end: float) -> list[Answer]:
    return [a for a in answers if start <= a.sent < end]


def summary(answers: list[Answer], *, slo_ms: float, small: str) -> str:
    """How many, how many not answered, the share within the SLO and the share `small` answered."""
    n = len(answers)
    ok = [a for a in answers if a.status == 200]
    n_small = sum(a.model == small for a in ok)
    within = sum(a.within(slo_ms) for a in answers)
    return (f"{n} requests, {n - len(ok)} not answered, {100 * within / max(1, n):.1f} % within the"
            f" {slo_ms:.0f} ms SLO, {100 * n_small / max(1, len(ok)):.1f} % answered by {small}")


# ---------------------------------------------------------------------------- the front door


@dataclass(frozen=True)
class Sample:
    at: float
    route: float | None
    """The smaller model's weight in the applied route's infer rule, 0-1; None: no such rule."""
    status: float | None
    metric: float | None
    why: str = ""
    """The shard's status reasons about the fallback (the decision's own words)."""


def share_at(samples: list[Sample], t: float) -> float | None:
    """The route's share as last sampled at or before `t`."""
    before = [s for s in samples if s.at <= t]
    return before[-1].route if before else None


def infer_share(route: dict[str, Any] | None, shard: str) -> float | None:
    """The smaller model's weight in the shard's infer rule, 0-1; None: no such rule."""
    rule_name = f"{shard}-{names.FALLBACK_RULE_SUFFIX}"
    for rule in (route or {}).get("spec", {}).get("rules", []):
        if rule.get("name") == rule_name:
            refs = rule["backendRefs"]
            return sum(int(r.get("weight", 1)) for r in refs[1:]) / sum(int(r.get("weight", 1)) for r in refs)
    return None


def _metric(text: str, ns: str, shard: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("voxscale_fallback_share{") and f'namespace="{ns}"' in line \
                and f'shard="{shard}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def read_back(kubectl: Kubectl, ns: str, cluster: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(HTTPRoute, SpeechCluster) as stored now, one kubectl call."""
    out = kubectl.run("get", f"httproutes.{names.GATEWAY_API_GROUP},{names.PLURAL}.{names.GROUP}",
                      "-n", ns, "-o", "json", check=False)
    items = json.loads(out.stdout)["items"] if out.returncode == 0 else []
    by_kind = {i["kind"]: i for i in items if i["metadata"]["name"] == cluster}
    return by_kind.get("HTTPRoute"), by_kind.get("SpeechCluster")


class HttpWorkers(Protocol):
    def http_endpoints(self) -> list[Endpoint]:
        """The shard's Ready workers' HTTP ports."""
        ...


@dataclass
class Follower:
    """Every second: the route and SpeechCluster the operator wrote, read back; the front door
    re-translated from the route (a reload when it changed) and given the bridge's workers."""

    kubectl: Kubectl
    ns: str
    cluster: str
    shard: str
    bridge: HttpWorkers
    door: FrontDoor
    op: Any
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                self.once()
            except Exception as e:  # an API or HAProxy hiccup: kept, and the next pass tries again
                self.errors.append(f"{type(e).__name__}: {e}"[:200])

    def once(self) -> None:
        route, obj = read_back(self.kubectl, self.ns, self.cluster)
        if route is not None:
            self.door.set_route(route)
        workers = self.bridge.http_endpoints()
        if workers != self.door.endpoints.get(self.shard):
            self.door.set_endpoints(self.shard, workers)
        shard = shard_status(obj or {}, self.shard) or {}
        why = " | ".join(r for r in shard.get("reasons", []) if r.startswith("fallback:"))
        metric = _metric(self.op.metrics(), self.ns, self.shard)
        share = shard.get("fallbackShare")
        self.samples.append(Sample(time.monotonic(), infer_share(route, self.shard), share, metric, why))
