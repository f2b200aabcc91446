"""Turn Prometheus query results into one number or a History, or into a reason there is none."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxscale.series import History


@dataclass(frozen=True)
class Reading:
    """One instant query's outcome: a finite value, or None and why."""

    value: float | None
    reason: str | None = None


def _no(name: str, why: str) -> Reading:
    return Reading(None, f"{name}: {why}")


def one_value(name: str, result: Any, now: float, max_staleness_seconds: float) -> Reading:
    """The single finite, fresh sample of an instant-vector result, else "no data" with a reason.

    `result` is the `data.result` list of /api/v1/query. Several series where one was expected
    is no data too: summing them here would hide a query that selects more than one shard.
    """
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        return _no(name, "unexpected result shape (want an instant vector)")
    if not result:
        return _no(name, "empty result (no series matched)")
    if len(result) > 1:
        return _no(name, f"{len(result)} series where one was expected")
    try:
        ts, raw = result[0]["value"]
        at, value = float(ts), float(raw)
    except (KeyError, TypeError, ValueError) as exc:
        return _no(name, f"malformed sample ({type(exc).__name__})")
    if math.isnan(value):
        return _no(name, "NaN")
    if math.isinf(value):
        return _no(name, f"{'+' if value > 0 else '-'}Inf")
    age = now - at
    if age > max_staleness_seconds:
        return _no(name, f"stale: sample is {age:.0f}s old (bound {max_staleness_seconds:.0f}s)")
    return Reading(value)


def per_label(name: str, result: Any, label: str, now: float,
              max_staleness_seconds: float) -> tuple[dict[str, float], tuple[str, ...]]:
    """{label value: finite fresh sample} of an instant vector with one series per `label` value
    (e.g. `sum by (pod)`), and why any series was left out. A value left out has no data: a
    NaN, ±Inf or stale pod is absent from the answer, never 0.
    """
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        return {}, (f"{name}: unexpected result shape (want an instant vector)",)
    values: dict[str, float] = {}
    seen: set[str] = set()
    reasons: list[str] = []
    for series in result:
        key = (series.get("metric") or {}).get(label)
        if not isinstance(key, str) or not key:
            reasons.append(f"{name}: a series without the {label!r} label")
            continue
        reading = one_value(f"{name}[{key}]", [series], now, max_staleness_seconds)
        if key in seen:  # two answers for one pod: neither can be trusted
            values.pop(key, None)
            reasons.append(f"{name}: {label} {key!r} appears twice")
        elif reading.value is None:
            reasons.append(reading.reason or f"{name}[{key}]: no data")
        else:
            values[key] = reading.value
        seen.add(key)
    return values, tuple(reasons)


def grid_size(start: float, end: float, step: float) -> int:
    """Points on start, start+step, ... <= end (a 1e-9 step slack absorbs float error)."""
    if end < start:
        return 0
    return math.floor((end - start) / step + 1e-9) + 1


def fill_history(result: Any, start: float, step: float, n: int) -> tuple[History, str | None]:
    """A range-query result on the grid; missing, NaN and ±Inf points are NaN.

    Returns all-NaN and a reason when the answer is empty, malformed or has several series.
    """
    values = np.full(n, np.nan, dtype=np.float64)
    if not isinstance(result, list):
        return History(start, step, values), "unexpected result type (want a range matrix)"
    if not result:
        return History(start, step, values), "empty result (no series matched)"
    if len(result) > 1:
        return History(start, step, values), f"{len(result)} series where one was expected"
    try:
        for ts, raw in result[0]["values"]:
            _place(values, start, step, float(ts), float(raw))
    except (KeyError, TypeError, ValueError) as exc:
        values[:] = np.nan
        return History(start, step, values), f"malformed range answer ({type(exc).__name__})"
    return History(start, step, values), None


def _place(values: np.ndarray[Any, np.dtype[np.float64]], start: float, step: float,
           at: float, value: float) -> None:
    i = round((at - start) / step)
    # Points off our grid (a server that ignored `start`) are dropped, not smeared onto it.
    if 0 <= i < len(values) and abs(at - (start + i * step)) < 1e-3 and math.isfinite(value):
        values[i] = value
