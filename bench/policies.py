"""Benchmark every replay policy on every trace in examples/traces and check voxscale's goals.

    .venv/bin/python bench/policies.py            # last 7 days (7 days of history before), W ∈ {30, 120, 180}
    .venv/bin/python bench/policies.py --quick    # last day only, smaller sweep
    .venv/bin/python bench/policies.py --knob scale_down_stabilization_seconds=600 --knob quantile=0.8

Prints the Markdown table, the timing, and each goal as met/missed with the margin; writes
table.md, scores.json, one PNG per trace (W = 120 s) and sweep.png into --out.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from voxscale.capacity import load_profile
from voxscale.replay.plot import plot_runs, plot_sweep
from voxscale.replay.policies import POLICY_NAMES
from voxscale.replay.report import Score, markdown, score, to_json, with_oracle_ratio
from voxscale.replay.runner import Scenario, load, replay
from voxscale.replay.workload import BURSTY, SEASONAL, trace_paths

ROOT = Path(__file__).resolve().parent.parent
GOAL_W = 120.0


def run_one(path: str, scenario: Scenario, knobs: dict[str, object], plot_to: str | None,
            policies: Sequence[str] = POLICY_NAMES) -> tuple[list[Score], float]:
    profile = load_profile()
    started = time.perf_counter()
    workload = load(path, profile, scenario)
    runs = replay(workload, policies, profile, scenario, knobs)
    if plot_to:
        plot_runs(runs, plot_to, capacity_rps=profile.sustainable_rps, slo_ms=profile.slo_ms,
                  percentile=profile.percentile)
    scores = [score(r, profile.slo_ms, profile.percentile) for r in runs]
    return scores, time.perf_counter() - started


def timing(path: Path, policies: Sequence[str]) -> None:
    """Seconds to simulate the whole 14-day ELB trace at 1-s steps, one policy, one core."""
    profile = load_profile()
    scenario = Scenario(span_days=14.0, prior_days=0.0)
    workload = load(path, profile, scenario)
    for name in policies:
        started = time.perf_counter()
        replay(workload, [name], profile, scenario)
        print(f"timing: {workload.seconds / 86400:.1f} days = {workload.seconds:,} 1-s steps, "
              f"{name}: {time.perf_counter() - started:.1f} s on one core")


def goals(scores: Sequence[Score]) -> list[str]:
    """One line per goal and trace: met / missed, and by how much."""
    at = {(s.trace, s.policy): s for s in scores if s.warmup_seconds == GOAL_W}
    traces = sorted({t for t, _ in at})
    lines: list[str] = []

    def mark(ok: bool) -> str:
        return "MET   " if ok else "MISSED"

    for t in traces:
        v = at.get((t, "voxscale"))
        if v is None:
            continue
        if v.oracle_ratio is not None:
            lines.append(f"{mark(v.oracle_ratio <= 1.15)} {t}: replica-hours {v.oracle_ratio:.2f}×"
                         f" oracle (goal ≤ 1.15×, margin {1.15 - v.oracle_ratio:+.2f})")
        limit = 1.0 if t in SEASONAL else 2.0  # bursty (and unknown) traces: 2 %
        lines.append(f"{mark(v.violation_minutes_pct <= limit)} {t}: violation minutes "
                     f"{v.violation_minutes_pct:.2f}% (goal ≤ {limit:g}%, margin "
                     f"{limit - v.violation_minutes_pct:+.2f} pp)")
        lines += _versus(t, v, at)
        w30 = next((s for s in scores if (s.trace, s.policy, s.warmup_seconds)
                    == (t, "voxscale", 30.0)), None)
        w180 = next((s for s in scores if (s.trace, s.policy, s.warmup_seconds)
                     == (t, "voxscale", 180.0)), None)
        if w30 and w180:
            d = w180.violation_minutes_pct - w30.violation_minutes_pct
            lines.append(f"{mark(d <= 2.0)} {t}: W 30→180 s adds {d:+.2f} pp violation time "
                         f"(goal ≤ 2 pp)")
    return lines


def _versus(t: str, v: Score, at: dict[tuple[str, str], Score]) -> list[str]:
    out = []
    hpa, kpa, aws = at.get((t, "hpa")), at.get((t, "kpa")), at.get((t, "aws-predictive"))
    if hpa:
        ok = v.violation_minutes_pct * 2 <= hpa.violation_minutes_pct and (
            v.replica_hours <= hpa.replica_hours)
        both_zero = hpa.violation_minutes_pct == 0 and v.violation_minutes_pct == 0
        ok = ok or (both_zero and v.replica_hours <= hpa.replica_hours)
        out.append(f"{'MET   ' if ok else 'MISSED'} {t}: vs HPA violations "
                   f"{v.violation_minutes_pct:.2f}% vs {hpa.violation_minutes_pct:.2f}% (goal ≤ ½"
                   f"{', both 0' if both_zero else ''}), replica-h {v.replica_hours:.0f} vs "
                   f"{hpa.replica_hours:.0f} ({v.replica_hours / hpa.replica_hours - 1:+.0%})")
    if kpa:
        saving = 1 - v.replica_hours / kpa.replica_hours
        ok = saving >= 0.10 and v.violation_minutes_pct <= kpa.violation_minutes_pct
        out.append(f"{'MET   ' if ok else 'MISSED'} {t}: vs KPA replica-h {saving:+.0%} saved"
                   f" (goal ≥ +10%), violations {v.violation_minutes_pct:.2f}% vs "
                   f"{kpa.violation_minutes_pct:.2f}% (goal ≤)")
    if aws and t in BURSTY:
        ok = v.violation_minutes_pct <= 0.5 * aws.violation_minutes_pct
        out.append(f"{'MET   ' if ok else 'MISSED'} {t}: vs AWS-predictive violations "
                   f"{v.violation_minutes_pct:.2f}% vs {aws.violation_minutes_pct:.2f}% "
                   f"(goal ≤ ½)")
    return out


def sweep(paths: Sequence[Path], base: Scenario, utils: Sequence[float], *,
          knobs: dict[str, object], pool: ProcessPoolExecutor, out: Path) -> None:
    """Each policy's violations vs replica-hours as its utilisation target moves."""
    jobs = {(p.stem, u): pool.submit(run_one, str(p), _with(base, u), knobs, None)
            for p in paths for u in utils}
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for u in utils:
        rows = with_oracle_ratio([s for p in paths for s in jobs[(p.stem, u)].result()[0]])
        for policy in {s.policy for s in rows} - {"oracle"}:
            mine = [s for s in rows if s.policy == policy]
            cost = sum(s.oracle_ratio or 0 for s in mine) / len(mine)
            viol = sum(s.violation_minutes_pct for s in mine) / len(mine)
            curves.setdefault(policy, []).append((u, cost, viol))
            print(f"sweep u={u:.2f} {policy:15s} × oracle {cost:.2f}  violation min {viol:.2f}%")
    plot_sweep(curves, out / "sweep.png")
    (out / "sweep.json").write_text(json.dumps(curves, indent=1))


def _with(base: Scenario, u: float) -> Scenario:
    return Scenario(base.warmup_seconds, base.peak_replicas, base.span_days, base.prior_days, u,
                    base.seed, base.max_replicas)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--traces", default=str(ROOT / "examples" / "traces"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "policies"))
    ap.add_argument("--quick", action="store_true", help="last day only; 2-point sweep")
    ap.add_argument("--span-days", type=float, default=None, help="default 7 (quick: 1)")
    ap.add_argument("--sweep-span-days", type=float, default=None, help="default 2 (quick: 1)")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--timing", action="store_true",
                    help="only time 14 days of ELB at 1-s steps per policy, then exit")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--knob", action="append", default=[],
                    help="voxscale spec knob NAME=VALUE (Policy field, quantile or method)")
    args = ap.parse_args()
    knobs = {k: _number(v) for k, v in (kv.split("=", 1) for kv in args.knob)}
    span = args.span_days or (1.0 if args.quick else 7.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = trace_paths(args.traces)
    if args.timing:
        timing(next(p for p in paths if p.stem.startswith("elb")), POLICY_NAMES)
        return 0
    profile = load_profile()
    print(profile.summary())
    print(f"traces: {', '.join(p.stem for p in paths)}; span {span:g} days; knobs {knobs or '-'}")
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        jobs = [
            (p, w, pool.submit(run_one, str(p), Scenario(warmup_seconds=w, span_days=span), knobs,
                               str(out / f"{p.stem}-W{w:g}.png") if w == GOAL_W else None))
            for w in (30.0, 120.0, 180.0) for p in paths
        ]
        scores: list[Score] = []
        for p, w, job in jobs:
            got, seconds = job.result()
            scores += got
            print(f"  {p.stem} W={w:g}: {len(got)} policies in {seconds:.1f} s")
        elapsed = time.perf_counter() - started
        scores = with_oracle_ratio(scores)
        table = markdown(sorted(scores, key=lambda s: (s.warmup_seconds, s.trace)))
        (out / "table.md").write_text(table + "\n")
        (out / "scores.json").write_text(to_json(scores) + "\n")
        print(table)
        print(f"\nfull run: {len(jobs)} replays × {len(POLICY_NAMES)} policies in {elapsed:.0f} s "
              f"wall on {args.jobs} processes")
        print("\nGOALS (W = 120 s):")
        print("\n".join(goals(scores)))
        if not args.no_sweep:
            sweep_span = args.sweep_span_days or (1.0 if args.quick else 2.0)
            utils = (0.5, 0.85) if args.quick else (0.5, 0.6, 0.7, 0.85)
            sweep(paths, Scenario(span_days=sweep_span), utils, knobs=knobs, pool=pool, out=out)
    print(f"total {time.perf_counter() - started:.0f} s; wrote {out}")
    return 0


def _number(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    raise SystemExit(main())
