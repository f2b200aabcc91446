"""Check that a change to the replay or to decide() left every decision as it was.

    .venv/bin/python bench/replay_identity.py --record /tmp/before.npz   # on the old code
    .venv/bin/python bench/replay_identity.py --compare /tmp/before.npz  # on the new code

Replays `--days` (default 2) of two bundled traces (7 days of history before) under every
policy and saves each run's per-second arrays and score. --compare prints IDENTICAL when
requested/ready/warming replicas and scale-event counts are equal and every float (backlog,
latency bounds, served, score) equals the recording to 1e-9 relative; otherwise each mismatch.
Runs ~30 s on an idle core (voxscale is most of it), so it is a script, not a test.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as bench/policies.py

import numpy as np

from voxscale.series import FloatArray
from voxscale_lab.capacity import load_profile
from voxscale_lab.replay.policies import POLICY_NAMES
from voxscale_lab.replay.report import score
from voxscale_lab.replay.runner import Scenario, load, replay

ROOT = Path(__file__).resolve().parent.parent
TRACES = ("elb_request_count_8c0756", "Twitter_volume_AAPL")
EXACT = ("requested", "ready", "warming")
FLOATS = ("backlog", "lo_ms", "width_ms", "served")


def record(days: float, policies: list[str]) -> dict[str, FloatArray]:
    profile = load_profile()
    out: dict[str, FloatArray] = {}
    for trace in TRACES:
        scenario = Scenario(span_days=days)
        workload = load(ROOT / "examples" / "traces" / f"{trace}.csv", profile, scenario)
        for name in policies:
            started = time.perf_counter()
            (run,) = replay(workload, [name], profile, scenario)
            s = score(run, profile.slo_ms, profile.percentile)
            print(f"{trace} {name}: {time.perf_counter() - started:.1f} s, "
                  f"{s.violation_minutes_pct:.3f} % violation minutes, {s.replica_hours:.2f} replica-hours")
            for field in (*EXACT, *FLOATS):
                out[f"{trace}/{name}/{field}"] = getattr(run, field)
            out[f"{trace}/{name}/events"] = np.array([run.scale_events])
            out[f"{trace}/{name}/score"] = np.array(
                [v for v in asdict(s).values() if isinstance(v, float)])
    return out


def differs(key: str, want: FloatArray, got: FloatArray) -> bool:
    if key.rsplit("/", 1)[1] in (*EXACT, "events"):
        return not np.array_equal(want, got)
    return not (want.shape == got.shape and np.array_equal(np.isinf(want), np.isinf(got))
                and np.allclose(got, want, rtol=1e-9, atol=0.0, equal_nan=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", metavar="NPZ")
    mode.add_argument("--compare", metavar="NPZ")
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--policies", default=",".join(POLICY_NAMES))
    args = ap.parse_args()
    got = record(args.days, args.policies.split(","))
    if args.record:
        np.savez_compressed(args.record, **got)
        print(f"recorded {len(got)} arrays in {args.record}")
        return 0
    want = np.load(args.compare)
    bad = [k for k in got if k not in want or differs(k, want[k], got[k])]
    for key in bad:
        print(f"MISMATCH {key}")
    print("IDENTICAL" if not bad else f"{len(bad)} MISMATCHES", f"({len(got)} arrays)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
