"""The SLO capacity model against real Triton: predicted vs measured p95 over 1 and 2 replicas.

Starts real tritonserver workers serving the GPU-time stand-in (a batch of b takes a + c·b,
from its profile.json) with the operator's rendered config.pbtxt, and for each replica count
drives open-loop Poisson load, spread over the replicas round robin (an L7 gateway) or at
random (`--balance random`, kube-proxy's iptables mode), at 40/60/80/100 % of the rate the
model says those replicas hold at the SLO. Prints the model's p95 (decide/capacity.py:
square-root staffing over the batch latency model) beside the measured one, and the error.

    .venv/bin/python bench/capacity_model.py [--duration 20] [--replicas 1 2] [--balance random]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from contextlib import ExitStack
from typing import Any

import numpy as np

from voxscale.decide.capacity import CapacityModel, ServiceTime
from voxscale_lab.worker.arrivals import poisson_arrivals
from voxscale_lab.worker.loadgen import Target, chunk_audio, drive
from voxscale_lab.worker.results import Record, summarize
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, Worker, worker_spec
from voxscale_lab.worker.triton import free_ports

MODEL = "asr-standin"
FRACTIONS = (0.4, 0.6, 0.8, 1.0)


def model_for(slo_ms: float) -> CapacityModel:
    standin = json.loads((DEFAULT_MODEL_DIR / "1" / "profile.json").read_text())
    spec = worker_spec(MODEL)
    service = ServiceTime(standin["fixed_seconds"], standin["per_item_seconds"],
                          spec.batching.max_batch_size,
                          spec.batching.max_queue_delay_microseconds / 1e6)
    return CapacityModel(service.sustainable_rps(slo_ms, 0.95), slo_ms, 0.95, service=service)


async def spread(targets: list[Target], arrivals: np.ndarray[Any, Any], rng: np.random.Generator,
                 balance: str) -> tuple[list[Record], float]:
    """Each arrival to the next replica in turn (an L7 gateway's round robin) or to one picked
    at random (kube-proxy's iptables mode), all replicas driven at once."""
    n = len(targets)
    picks = rng.integers(n, size=len(arrivals)) if balance == "random" else (
        np.arange(len(arrivals)) % n)
    runs = await asyncio.gather(*(drive(t, arrivals[picks == i]) for i, t in enumerate(targets)))
    return [r for records, _ in runs for r in records], max(wall for _, wall in runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load per point")
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--slo-ms", type=float, default=500.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--balance", choices=("round-robin", "random"), default="round-robin",
                    help="how arrivals are spread over replicas (default: round-robin)")
    args = ap.parse_args()
    model = model_for(args.slo_ms)
    assert model.service is not None
    print(f"stand-in: s(b) = {model.service.fixed_seconds * 1000:g} +"
          f" {model.service.per_request_seconds * 1000:g}·b ms, max batch"
          f" {model.service.max_batch}, queue delay {model.service.max_queue_delay_seconds * 1000:g}"
          f" ms; model: {model.per_replica_rps:.1f} req/s per replica at p95 ≤ {args.slo_ms:g} ms")
    print(f"balance: {args.balance}")
    print("| replicas | rate req/s | predicted p95 ms | measured p95 ms | error |")
    print("|---:|---:|---:|---:|---:|")
    errors: list[float] = []
    rng = np.random.default_rng(args.seed)
    for n in args.replicas:
        with ExitStack() as stack:
            workers = [stack.enter_context(Worker(DEFAULT_MODEL_DIR, worker_spec(MODEL), free_ports(),
                                                  load_seconds=0.5)) for _ in range(n)]
            for w in workers:
                w.start(ready_timeout=120)
            audio = chunk_audio(1.0)
            targets = [Target(w.grpc_url, MODEL, audio, client_timeout=30.0) for w in workers]
            for f in FRACTIONS:
                rate = round(f * model.rate_for(n), 2)
                arrivals = poisson_arrivals(rate, args.duration, rng)
                records, wall = asyncio.run(spread(targets, arrivals, rng, args.balance))
                measured = summarize(records, wall, len(arrivals))["p95_ms"]
                predicted = model.predicted_latency_ms(rate, n)
                err = (predicted - measured) / measured if measured and predicted else None
                if err is not None:
                    errors.append(err)
                print(f"| {n} | {rate:.1f} | {predicted:.0f} | {measured} |"
                      f" {'–' if err is None else f'{err:+.0%}'} |", flush=True)
    if errors:
        worst = max(errors, key=abs)
        print(f"model error over {len(errors)} points: mean {np.mean(errors):+.0%}, mean |error|"
              f" {np.mean(np.abs(errors)):.0%}, worst {worst:+.0%} (negative: the model is optimistic)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
