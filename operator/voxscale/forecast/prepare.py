"""Turn a raw History into a gap-free series at a coarse fitting step, or refuse it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from voxscale.series import FloatArray, History

MAX_MISSING_FRACTION = 0.5
"""More than half the window missing: the shape we would fit is mostly our own invention."""
SHORT_GAP_SECONDS = 3600.0
"""Gaps up to an hour are bridged by a straight line; longer ones reuse the previous season."""


@dataclass(frozen=True)
class Prepared:
    """`values[i]` is the mean rate of the bucket centred on `start + i*step`; no NaN."""

    start: float
    step: float
    values: FloatArray
    season: int
    """Points per season at this step (e.g. 288 for a day at 5 minutes)."""
    last_seen: float
    """Time of the newest raw sample (the last bucket is centred a little before it)."""

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def end(self) -> float:
        return self.start + (len(self) - 1) * self.step


def bucket_factor(step: float, season_seconds: float, max_per_season: int) -> int:
    """How many raw samples to average per fitting point.

    A day of 1-minute data is 1,440 points; with at most 288 per season we average 5, and
    prefer a factor that divides the season so a season stays a whole number of points.
    """
    per_season = season_seconds / step
    k = max(1, math.ceil(per_season / max_per_season))
    for candidate in range(k, 2 * k + 1):
        if abs(per_season / candidate - round(per_season / candidate)) < 1e-6:
            return candidate
    return k


def prepare(
    history: History, season_seconds: float, *, max_per_season: int = 288, max_seasons: int = 35
) -> Prepared | None:
    """Trim, bucket and fill `history`; None when nothing usable is left."""
    values = history.values
    valid = np.flatnonzero(np.isfinite(values))
    if valid.size == 0:
        return None
    k = bucket_factor(history.step, season_seconds, max_per_season)
    season = max(1, round(season_seconds / (history.step * k)))
    # Keep only the trailing `max_seasons` seasons: older data slows the fit, barely helps.
    first = max(int(valid[0]), int(valid[-1]) + 1 - max_seasons * season * k)
    raw = values[first : int(valid[-1]) + 1]
    if np.count_nonzero(np.isnan(raw)) > MAX_MISSING_FRACTION * raw.size:
        return None
    means, offset = _bucket_means(raw, k)
    step = history.step * k
    start = history.start + (first + offset + (k - 1) / 2) * history.step
    filled = _fill_gaps(means, season, max(1, int(SHORT_GAP_SECONDS // step)))
    last_seen = history.start + int(valid[-1]) * history.step
    return Prepared(start, step, np.clip(filled, 0.0, None), season, last_seen)


def _bucket_means(raw: FloatArray, k: int) -> tuple[FloatArray, int]:
    """Means of k consecutive samples, aligned so the newest sample closes the last bucket."""
    n = raw.size // k
    offset = raw.size - n * k
    if n == 0:  # fewer samples than one bucket: a single partial bucket
        return np.array([float(np.nanmean(raw))]), 0
    block = raw[offset:].reshape(n, k)
    seen = np.isfinite(block)
    total = np.where(seen, block, 0.0).sum(axis=1)
    count = seen.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan), offset


def _fill_gaps(values: FloatArray, season: int, short: int) -> FloatArray:
    """Bridge short gaps linearly; fill long gaps from one season earlier when we have it."""
    missing = np.isnan(values)
    if not missing.any():
        return values
    idx = np.arange(values.size)
    line = np.interp(idx, idx[~missing], values[~missing])
    out = values.copy()
    for lo, hi in _runs(missing):
        if hi - lo <= short:
            out[lo:hi] = line[lo:hi]
            continue
        for i in range(lo, hi):
            out[i] = out[i - season] if i >= season else line[i]
    return out


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[lo, hi) index ranges where mask is True."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))
