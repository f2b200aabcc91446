"""Per-request load-test records and their summary (latency percentiles, throughput, failures)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Outcome = Literal["ok", "rejected", "timeout", "error"]


@dataclass(frozen=True)
class Record:
    """One request: when it was due (s from start), how late it was sent, and how long it took."""

    due: float
    sent_lag: float
    latency: float
    outcome: Outcome
    detail: str = ""


def classify(status: str, message: str) -> Outcome:
    """Sort a Triton/gRPC failure: the client deadline, the server's queue-policy rejection, or other.

    Triton's `timeout_action: REJECT` answers "Request timeout expired"; a client-side
    deadline surfaces as gRPC DEADLINE_EXCEEDED.
    """
    if "DEADLINE_EXCEEDED" in status:
        return "timeout"
    if "timeout expired" in message.lower() or "UNAVAILABLE" in status:
        return "rejected"
    return "error"


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), or None for no values: no data is not a zero latency."""
    return float(np.percentile(values, q)) if values else None


def summarize(records: list[Record], wall_seconds: float, offered: int) -> dict[str, Any]:
    """Counts, throughput (successful requests per wall second) and latency percentiles in ms."""
    ok = [r.latency * 1000 for r in records if r.outcome == "ok"]
    counts = {o: sum(1 for r in records if r.outcome == o) for o in ("ok", "rejected", "timeout", "error")}
    lags = [r.sent_lag * 1000 for r in records]

    def ms(q: float) -> float | None:
        p = percentile(ok, q)
        return None if p is None else round(p, 2)

    return {
        "offered": offered,
        "completed": len(records),
        **counts,
        "wall_seconds": round(wall_seconds, 3),
        "throughput_rps": round(counts["ok"] / wall_seconds, 3) if wall_seconds > 0 else None,
        "p50_ms": ms(50),
        "p95_ms": ms(95),
        "p99_ms": ms(99),
        "max_ms": round(max(ok), 2) if ok else None,
        # A loaded client sends late; past a few ms the test is no longer open-loop.
        "send_lag_p99_ms": None if not lags else round(float(np.percentile(lags, 99)), 2),
    }


def records_json(records: list[Record]) -> list[dict[str, Any]]:
    return [
        {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in asdict(r).items()}
        for r in records
    ]
