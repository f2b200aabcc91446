"""Load public request traces (NAB counts per interval, Azure per-request logs) as rate histories."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from voxscale.series import FloatArray, History

_NAB_COLUMNS = ("timestamp", "value")
_AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


@dataclass(frozen=True)
class Trace:
    """A request trace: either counts per fixed interval, or one arrival time per request.

    `times` are unix seconds. For interval traces `counts[i]` requests arrived in
    `[times[i], times[i] + interval)`; for per-request traces `counts` is None.
    """

    name: str
    times: FloatArray
    counts: FloatArray | None
    interval: float | None

    @property
    def arrivals(self) -> FloatArray:
        """Arrival timestamps (unix seconds, sorted) of a per-request trace."""
        if self.counts is not None:
            raise ValueError(f"{self.name} counts requests per interval; it has no arrivals")
        return self.times

    @property
    def per_request(self) -> bool:
        return self.counts is None

    def rate(self, step_seconds: float) -> History:
        """The request rate (req/s) on a regular grid of `step_seconds`."""
        if step_seconds <= 0:
            raise ValueError(f"step_seconds must be > 0, got {step_seconds}")
        if self.counts is None:
            return _arrival_rate(self.times, step_seconds)
        assert self.interval is not None
        return _interval_rate(self.times, self.counts, self.interval, step_seconds)


def load_trace(path: str | Path) -> Trace:
    """Read a NAB `timestamp,value` file or an Azure `TIMESTAMP,ContextTokens,...` file."""
    p = Path(path)
    frame = pd.read_csv(p)
    columns = tuple(str(c) for c in frame.columns)
    if columns[:2] == _NAB_COLUMNS:
        times = _unix_seconds(frame["timestamp"])
        order = np.argsort(times, kind="stable")
        times = times[order]
        counts = frame["value"].to_numpy(dtype=np.float64)[order]
        if len(times) < 2:
            raise ValueError(f"{p}: an interval trace needs at least two rows to know its step")
        # The modal gap is the interval: ELB has eight 10-minute holes among 5-minute rows.
        gaps = np.diff(times)
        values, freq = np.unique(gaps[gaps > 0], return_counts=True)
        return Trace(p.stem, times, counts, float(values[np.argmax(freq)]))
    if columns[:3] == _AZURE_COLUMNS:
        return Trace(p.stem, np.sort(_unix_seconds(frame["TIMESTAMP"])), None, None)
    raise ValueError(
        f"{p}: unknown trace format with columns {columns}; expected "
        f"{','.join(_NAB_COLUMNS)} (NAB) or {','.join(_AZURE_COLUMNS)} (Azure)"
    )


def _unix_seconds(column: pd.Series) -> FloatArray:
    """Naive timestamps are UTC; any pandas resolution (ns or us) converts the same way."""
    stamps = pd.to_datetime(column)
    delta = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
    return np.asarray(delta, dtype=np.float64)


def _interval_rate(times: FloatArray, counts: FloatArray, interval: float, step: float) -> History:
    """Native rate = count / interval; coarser steps average the intervals present in them."""
    native = counts / interval
    start = float(times[0])
    if step < interval:
        # Finer than the data: the rate is constant within an interval, so repeat it.
        n = math.floor((times[-1] + interval - start) / step)
        grid = start + step * np.arange(n)
        slot = np.searchsorted(times, grid, side="right") - 1
        covered = grid < times[slot] + interval
        return History.of(start, step, np.where(covered, native[slot], np.nan))
    bins = np.floor((times - start) / step + 1e-9).astype(np.int64)
    n = int(bins[-1]) + 1
    total = np.bincount(bins, weights=native, minlength=n)
    seen = np.bincount(bins, minlength=n)
    # A bin with no row is "no data" (NaN), never zero traffic.
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(seen > 0, total / np.maximum(seen, 1), np.nan)
    return History.of(start, step, values)


def _arrival_rate(arrivals: FloatArray, step: float) -> History:
    """Count arrivals per bin: every bin of a request log is observed, so empty bins are 0."""
    if len(arrivals) == 0:
        return History.of(0.0, step, np.empty(0))
    start = math.floor(float(arrivals[0]) / step) * step
    bins = np.floor((arrivals - start) / step).astype(np.int64)
    counts = np.bincount(bins, minlength=int(bins[-1]) + 1).astype(np.float64)
    return History.of(start, step, counts / step)


def scale_to_peak(
    history: History, per_replica_rps: float, peak_replicas: float, percentile: float = 99
) -> History:
    """Rescale so the `percentile` of the rate equals `per_replica_rps × peak_replicas`.

    E.g. nyc_taxi's p99 is ~29,000 passengers/30 min; with 14 rps per replica and 40
    replicas at peak, every value is multiplied by 560 / 16.1.
    """
    reference = float(np.nanpercentile(history.values, percentile)) if len(history) else math.nan
    if not math.isfinite(reference) or reference <= 0:
        raise ValueError(f"cannot scale: the p{percentile} of the trace is {reference}")
    factor = per_replica_rps * peak_replicas / reference
    return History(history.start, history.step, history.values * factor)


def compress_time(history: History, factor: float, start: float | None = None) -> History:
    """Squeeze the time axis by `factor` (144 turns a day into 10 minutes); rates are unchanged."""
    if factor <= 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    origin = history.start if start is None else start
    return History(origin, history.step / factor, history.values)
