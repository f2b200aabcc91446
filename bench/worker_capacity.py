"""Capacity of one Triton worker replica (GPU-time stand-in) at the p95 SLO, dynamic batching on vs off.

Starts the real tritonserver twice (rendered config with maxBatchSize 32 / preferred 8,16, then
maxBatchSize 1), finds by open-loop Poisson load the highest rate whose p95 stays within the SLO
with nothing rejected, measures the latency at 50/70/85/95 % of that rate, and writes the
capacity profile that `capacity.requestsPerSecondPerReplica` is set from.

    .venv/bin/python bench/worker_capacity.py [--duration 30] [--slo-ms 500]
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voxscale.render.configmap import render_model_config
from voxscale_lab.worker.arrivals import poisson_arrivals
from voxscale_lab.worker.loadgen import Target, chunk_audio, run_load
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, Worker, worker_spec
from voxscale_lab.worker.triton import free_ports

ROOT = Path(__file__).resolve().parents[1]
MODEL = "asr-standin"
FRACTIONS = (0.5, 0.7, 0.85, 0.95)
Measure = Callable[[float], dict[str, Any]]


def sustainable(point: dict[str, Any], slo_ms: float) -> bool:
    """Within the SLO, nothing refused, and keeping up (a queue growing without bound fails)."""
    failed = point["rejected"] + point["timeout"] + point["error"]
    p95 = point["p95_ms"]
    keeping_up = point["throughput_rps"] >= 0.95 * point["rate"]
    return failed == 0 and p95 is not None and p95 <= slo_ms and keeping_up


def search(measure: Measure, start: float, slo_ms: float, refine: int) -> tuple[float, list[dict[str, Any]]]:
    """Raise the rate 1.5x until the SLO breaks, then bisect `refine` times between pass and fail."""
    curve: list[dict[str, Any]] = []
    good, bad = 0.0, start
    while True:
        curve.append(measure(bad))
        if not sustainable(curve[-1], slo_ms):
            break
        good, bad = bad, round(bad * 1.5, 2)
    for _ in range(refine):
        mid = round((good + bad) / 2, 2)
        curve.append(measure(mid))
        good, bad = (mid, bad) if sustainable(curve[-1], slo_ms) else (good, mid)
    return good, curve


def profile_mode(max_batch_size: int, args: argparse.Namespace) -> dict[str, Any]:
    spec = worker_spec(MODEL, max_batch_size=max_batch_size)
    with Worker(DEFAULT_MODEL_DIR, spec, free_ports(), load_seconds=0.5) as worker:
        ready = worker.start(ready_timeout=120)
        target = Target(worker.grpc_url, MODEL, chunk_audio(1.0), client_timeout=30.0)

        def measure(rate: float) -> dict[str, Any]:
            arrivals = poisson_arrivals(rate, args.duration, np.random.default_rng(args.seed))
            point = {"rate": rate, **run_load(target, arrivals, show_progress=False)["summary"]}
            print(f"  batch<= {max_batch_size:2d}  {rate:7.2f} req/s -> {_row(point)}", flush=True)
            return point

        capacity, curve = search(measure, args.start_rate[max_batch_size > 1], args.slo_ms, args.refine)
        at = {str(f): measure(round(f * capacity, 2)) for f in FRACTIONS} if capacity > 0 else {}
    return {
        "config_pbtxt": render_model_config(spec),
        "start_to_ready_seconds": round(ready, 2),
        "sustainable_rps": capacity,
        "at_fraction_of_capacity": at,
        "curve": sorted(curve, key=lambda p: p["rate"]),
    }


def _row(p: dict[str, Any]) -> str:
    return (
        f"ok {p['throughput_rps']} req/s, p50 {p['p50_ms']} ms, p95 {p['p95_ms']} ms, "
        f"p99 {p['p99_ms']} ms, refused {p['rejected'] + p['timeout'] + p['error']}, "
        f"send lag p99 {p['send_lag_p99_ms']} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per point")
    parser.add_argument("--slo-ms", type=float, default=500.0, help="p95 latency target")
    parser.add_argument("--refine", type=int, default=2, help="bisection steps after the doubling")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "workers" / "capacity-profile.json")
    args = parser.parse_args()
    args.start_rate = (4.0, 16.0)  # (batching off, on): start low so the first point passes
    standin = json.loads((DEFAULT_MODEL_DIR / "1" / "profile.json").read_text())
    print(f"stand-in: batch of b takes {standin['fixed_seconds']} + {standin['per_item_seconds']}·b s")
    off = profile_mode(1, args)
    on = profile_mode(32, args)
    gain = on["sustainable_rps"] / off["sustainable_rps"] if off["sustainable_rps"] else None
    profile = {
        "model": MODEL,
        "note": "GPU-time stand-in on the CPU build of Triton; see workers/README.md",
        "slo": {"percentile": "p95", "latency_ms": args.slo_ms},
        "standin_profile": {k: standin[k] for k in ("fixed_seconds", "per_item_seconds")},
        "load": {"arrivals": "poisson", "seconds_per_point": args.duration, "audio_seconds": 1.0},
        "host": f"{platform.machine()}, {platform.python_version()}",
        "requests_per_second_per_replica": on["sustainable_rps"],
        "batching_gain": None if gain is None else round(gain, 2),
        "dynamic_batching": on,
        "no_batching": off,
    }
    args.out.write_text(json.dumps(profile, indent=1) + "\n")
    print(
        f"sustainable at p95 <= {args.slo_ms:.0f} ms: batching {on['sustainable_rps']} req/s, "
        f"no batching {off['sustainable_rps']} req/s, gain {profile['batching_gain']}x -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
