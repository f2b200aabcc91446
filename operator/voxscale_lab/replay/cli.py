"""`voxscale replay`: backtest policies on traces and write a table, JSON and plots."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from voxscale_lab.capacity import load_profile
from voxscale_lab.replay.plot import plot_runs
from voxscale_lab.replay.policies import POLICY_NAMES
from voxscale_lab.replay.report import markdown, priced, score, to_json, with_oracle_ratio
from voxscale_lab.replay.runner import Scenario, load, replay
from voxscale_lab.replay.workload import trace_paths


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay", help="backtest scaling policies on request traces",
        description="Simulate one shard per trace at 1-s steps under each policy and score it.",
    )
    p.add_argument("traces", nargs="*", default=["examples/traces"],
                   help="trace CSV files or folders of them (default: examples/traces)")
    p.add_argument("--policies", default=",".join(POLICY_NAMES),
                   help=f"comma-separated, from {', '.join(POLICY_NAMES)}")
    p.add_argument("--warmup", type=float, default=120.0, help="model warm-up W in seconds")
    p.add_argument("--span-days", type=float, default=7.0,
                   help="replay the last N days of multi-day traces (0 = whole trace)")
    p.add_argument("--prior-days", type=float, default=7.0,
                   help="days before the span the forecaster may see as history")
    p.add_argument("--peak-replicas", type=float, default=40.0,
                   help="replicas the trace's p99 needs at the sustainable rate")
    p.add_argument("--target-utilization", type=float, default=0.7)
    p.add_argument("--profile", default=None, help="capacity profile JSON (default: packaged)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--price-per-replica-hour", type=float, default=1.20,
                   help="what one replica-hour costs (default 1.20, an on-demand GPU of the lab's"
                   " pools); the cost column is replica-h × this: one shard, one class, one pool,"
                   " so no spot/on-demand split is modelled. 0 leaves the cost out")
    p.add_argument("--currency", default="USD", help="ISO code printed with the cost")
    p.add_argument("--out", default="replay-out", help="folder for table.md, scores.json, PNGs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    scenario = Scenario(
        warmup_seconds=args.warmup, peak_replicas=args.peak_replicas,
        span_days=args.span_days or None, prior_days=args.prior_days,
        target_utilization=args.target_utilization, seed=args.seed,
    )
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    paths = [f for t in args.traces for f in (trace_paths(t) if Path(t).is_dir() else [Path(t)])]
    if not paths:
        print(f"no trace CSV found in {' '.join(args.traces)}")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(profile.summary())
    scores = []
    for path in paths:
        started = time.perf_counter()
        workload = load(path, profile, scenario)
        runs = replay(workload, policies, profile, scenario)
        scores += [score(r, profile.slo_ms, profile.percentile) for r in runs]
        plot_runs(runs, out / f"{workload.name}-W{args.warmup:g}.png",
                  capacity_rps=profile.sustainable_rps, slo_ms=profile.slo_ms,
                  percentile=profile.percentile)
        print(f"{workload.name}: {workload.seconds / 86400:.2f} days × {len(runs)} policies"
              f" in {time.perf_counter() - started:.1f} s")
    scores = priced(with_oracle_ratio(scores), args.price_per_replica_hour or None, args.currency)
    table = markdown(scores)
    (out / "table.md").write_text(table + "\n")
    (out / "scores.json").write_text(to_json(scores) + "\n")
    print(table)
    print(f"wrote {out}/table.md, scores.json and one PNG per trace")
    return 0
