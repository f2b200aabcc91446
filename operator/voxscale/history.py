"""Per-shard request-rate history kept in memory between ticks, so Prometheus is asked for days of
data once per refit and for a few new points per tick, not for a week of samples every 10 s."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from voxscale.series import History

# fetch(start, end, step) -> History on the grid start, start+step, ... <= end
Fetch = Callable[[float, float, float], History]


@dataclass
class HistoryBuffer:
    """One shard's rate series at a fixed step, covering at most `span` seconds."""

    span: float
    step: float
    refresh_every: float
    """Re-read the whole span this often (e.g. at each forecast refit), to heal gaps."""
    series: History | None = None
    refreshed_at: float = field(default=float("-inf"))

    def update(self, fetch: Fetch, now: float) -> History:
        """Extend to `now` (aligned down to the step); a full re-read when due or settings changed."""
        end = np.floor(now / self.step) * self.step
        if self.series is None or now - self.refreshed_at >= self.refresh_every:
            self.series = fetch(end - self.span + self.step, end, self.step)
            self.refreshed_at = now
        elif end > self.series.end:
            new = fetch(self.series.end + self.step, end, self.step)
            merged = np.concatenate([self.series.values, new.values])
            self.series = History(self.series.start, self.step, merged).last(self.span)
        return self.series


@dataclass
class HistoryStore:
    """Buffers keyed by shard identity; settings changes start a fresh buffer."""

    buffers: dict[tuple[str, ...], HistoryBuffer] = field(default_factory=dict)

    def buffer(
        self, key: tuple[str, ...], *, span: float, step: float, refresh_every: float
    ) -> HistoryBuffer:
        current = self.buffers.get(key)
        if current is None or (current.span, current.step, current.refresh_every) != (
            span,
            step,
            refresh_every,
        ):
            current = HistoryBuffer(span=span, step=step, refresh_every=refresh_every)
            self.buffers[key] = current
        return current

    def keys(self) -> set[tuple[str, ...]]:
        return set(self.buffers)

    def forget(self, key: tuple[str, ...]) -> None:
        """Drop a shard's buffer (the shard or its cluster was removed): 7 days at 1 minute is
        10,080 floats, ~80 KB a shard, that nothing would read again."""
        self.buffers.pop(key, None)
