"""spec.model.fallback on a real Triton through a real HAProxy (marked `integration`).

One tritonserver loads both models from one repository, each with the config.pbtxt the operator
renders (render_model_config, render_fallback_config) and the command line it renders
(triton_args: both --load-model flags, --exit-on-error=false). The main model is the GPU-time
stand-in at twice its usual batch time (a batch of b takes 100 + 12·b ms, so half the request rate
makes the same point on a 2-core machine shared with other work); the smaller one is the same
stand-in at 30 + 4·b ms.
Both hold one file lock while a batch "runs" (profile.json's device_lock), so they share one
emulated GPU as two models in one Triton share a real one: the smaller model's extra capacity
comes from its shorter batches, not from a second device.

The pool is capped at one replica (maxReplicas 1) and offered more interactive load than it holds
at the SLO. The operator's own decide() gives the share for that observation; the operator's
render_route puts it in the HTTPRoute; the lab's front door runs that route in HAProxy. The same
Poisson load (same seed) then runs with the route as rendered with the share and without it.
Figures are printed with the prefix `fallback:`; the asserts are about structure and order only.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from test_front_door import require_haproxy_for_test
from test_triton_worker import require_worker_extra

from voxscale.api import ScalerState, SpeechClusterSpec, parse_spec
from voxscale.decide import Observation, PodCounts, Policy, ShardMetrics, decide
from voxscale.render import Owner
from voxscale.render.routes import infer_path, render_route
from voxscale_lab.harness.front_door import Endpoint
from voxscale_lab.harness.haproxy import run_front_door
from voxscale_lab.worker.loadgen import chunk_audio
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, Worker, add_fallback_model, set_profile, worker_spec
from voxscale_lab.worker.triton import free_ports

pytestmark = pytest.mark.integration

MODEL, SMALL = "asr-standin", "asr-small"
SLO_MS = 1000.0
RATE = 75.0
"""Offered interactive load, req/s: above what one replica of the main model holds at the SLO."""
SECONDS = 12.0
SEED = 13
OWNER = Owner(name="asr", namespace="speech", uid="00000000-0000-0000-0000-000000000001")
AUDIO = chunk_audio(0.01).tolist()
"""10 ms of audio: the stand-in sleeps the same whatever the length, and a short body keeps the
client's JSON work off the measurement."""
MAIN_PROFILE = {"fixed_seconds": 0.1, "per_item_seconds": 0.012}
SMALL_PROFILE = {"fixed_seconds": 0.03, "per_item_seconds": 0.004, "load_seconds": 0.2}


def _spec() -> SpeechClusterSpec:
    return parse_spec({
        "model": {"name": MODEL, "backend": "python", "fallback": {
            "name": SMALL, "maxShare": 0.5, "serviceTime": {"batchFixedMs": 30, "perRequestMs": 4}}},
        "capacity": {"serviceTime": {"batchFixedMs": 100, "perRequestMs": 12}},
        "slo": {"percentile": "p95", "latencyMs": SLO_MS},
        "scaling": {"minReplicas": 1, "maxReplicas": 1},
        "shards": [{"name": "en", "region": "local", "languages": ["en"]}],
        "routing": {"parentRefs": [{"name": "speech-gateway"}], "protocol": "http"},
    })


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    require_worker_extra()
    require_haproxy_for_test()
    lock = str(tmp_path_factory.mktemp("device") / "gpu.lock")
    w = Worker(DEFAULT_MODEL_DIR, worker_spec(MODEL, _spec()), free_ports(), load_seconds=0.2)
    set_profile(w.repository / MODEL / "1", {**MAIN_PROFILE, "device_lock": lock})
    add_fallback_model(w.repository, w.spec, DEFAULT_MODEL_DIR, {**SMALL_PROFILE, "device_lock": lock})
    try:
        w.start(ready_timeout=120)
        yield w
    finally:
        w.stop()


def decided_share(spec: SpeechClusterSpec) -> float:
    """What the operator decides for RATE on one Ready replica at maxReplicas 1."""
    obs = Observation(ShardMetrics(at=0.0, rate=RATE), PodCounts(asked=1, ready=1), fallback_loaded=True)
    d = decide(obs, None, Policy.from_spec(spec, "en"), ScalerState(), 0.0)
    assert d.fallback_share is not None
    return d.fallback_share


@dataclass(frozen=True)
class Answer:
    seconds: float
    status: int
    model: str | None


async def _one(client: httpx.AsyncClient, url: str) -> Answer:
    body = {"inputs": [{"name": "AUDIO", "shape": [1, len(AUDIO)], "datatype": "FP32", "data": AUDIO}]}
    started = time.monotonic()
    try:
        r = await client.post(url, json=body, headers={"x-language": "en"})
    except httpx.HTTPError:
        return Answer(time.monotonic() - started, 0, None)
    model = r.json().get("model_name") if r.status_code == 200 else None
    return Answer(time.monotonic() - started, r.status_code, model)


async def _poisson(url: str) -> list[Answer]:
    """RATE req/s for SECONDS, Poisson (the same arrivals every run), each request on its own."""
    rng = random.Random(SEED)
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        tasks, start, at = [], time.monotonic(), 0.0
        while at < SECONDS:
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            tasks.append(asyncio.create_task(_one(client, url)))
            at += rng.expovariate(RATE)
        return list(await asyncio.gather(*tasks))


def _run(worker: Worker, route: dict[str, Any], workdir: Path) -> list[Answer]:
    endpoints = {"en": [Endpoint("en-0", f"127.0.0.1:{worker.ports.http}")]}
    with run_front_door(route, endpoints, workdir) as door:
        return asyncio.run(_poisson(f"{door.url}{infer_path(MODEL)}"))


def _figures(answers: list[Answer]) -> dict[str, float]:
    ok = [a for a in answers if a.status == 200]
    within = [a for a in ok if a.seconds * 1000 <= SLO_MS]
    p95 = float(np.percentile([a.seconds * 1000 for a in ok], 95)) if ok else float("nan")
    small = sum(a.model == SMALL for a in ok)
    per_model = {m: sum(a in within for a in ok if a.model == m) / max(1, sum(a.model == m for a in ok))
                 for m in (MODEL, SMALL)}
    return {"requests": len(answers), "answered": len(ok), "within": len(within) / len(answers),
            "p95": p95, "small": small / len(ok) if ok else 0.0,
            "within_main": per_model[MODEL], "within_small": per_model[SMALL]}


def test_a_capped_pool_keeps_more_interactive_requests_within_the_slo_with_the_smaller_model(
    worker: Worker, tmp_path: Path,
) -> None:
    spec = worker.spec
    assert spec.routing is not None
    share = decided_share(spec)
    on_route = render_route(OWNER, spec, spec.routing, shares={"en": share})
    off_route = render_route(OWNER, spec, spec.routing)
    on = _figures(_run(worker, on_route, tmp_path / "on"))
    time.sleep(2.0)  # the run without fallback goes last: it leaves a queue behind
    off = _figures(_run(worker, off_route, tmp_path / "off"))
    print(f"\nfallback: {RATE:.0f} req/s offered for {SECONDS:.0f} s to one replica (maxReplicas 1);"
          f" decided share {share:.0%} (maxShare 50 %), through HAProxy")
    for name, f in (("on ", on), ("off", off)):
        print(f"fallback: {name}: {f['requests']:.0f} requests, {f['answered']:.0f} answered,"
              f" {100 * f['within']:.1f} % within the {SLO_MS:.0f} ms SLO, p95 {f['p95']:.0f} ms,"
              f" {100 * f['small']:.1f} % served by {SMALL} (within the SLO: {MODEL}"
              f" {100 * f['within_main']:.1f} %, {SMALL} {100 * f['within_small']:.1f} %)")
    assert 0 < share <= 0.5
    assert on["requests"] == off["requests"]
    assert 0 < on["small"] < 1
    assert off["small"] == 0
    assert on["within"] > off["within"]


def test_a_smaller_model_missing_from_the_repository_leaves_the_worker_serving_the_main_one() -> None:
    require_worker_extra()
    with Worker(DEFAULT_MODEL_DIR, worker_spec(MODEL, _spec()), free_ports(), load_seconds=0.2) as w:
        assert f"--load-model={SMALL}" in w.command()
        assert "--exit-on-error=false" in w.command()
        w.start(ready_timeout=120)  # asr-small is not in the repository: no crash, Ready
        with httpx.Client(timeout=5.0) as client:
            main = client.get(f"{w.http_url}/v2/models/{MODEL}/ready").status_code
            small = client.get(f"{w.http_url}/v2/models/{SMALL}/ready").status_code
            series = client.get(w.metrics_url).text
        assert w.process is not None and w.process.poll() is None
    present = f'model="{SMALL}"' in series
    print(f"\nfallback: {SMALL} absent from the repository: Triton up, {MODEL} ready {main},"
          f" {SMALL} ready {small}, its series {'present' if present else 'absent'} on /metrics")
    assert (main, small) == (200, 400)
    assert f'model="{SMALL}"' not in series
    assert f'model="{MODEL}"' in series
