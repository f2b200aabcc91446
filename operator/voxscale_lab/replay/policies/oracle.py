"""The cheapest on/off schedule with perfect foresight that still pays the warm-up.

Each second needs n(t) = ceil(arrivals(t) / sustainable rps) Ready replicas. Replicas are
interchangeable, so the cost splits by level: replica i must be Ready whenever n(t) ≥ i.
Between two busy spells of level i it is cheaper to stay on through a gap of g seconds than
to stop and restart (which costs W warming seconds) exactly when g ≤ W. A replica Ready at t
was started at t − W, so every restart adds W paid seconds. Levels stay nested after
bridging, so the requested count is the number of levels on or warming. This is a lower
bound on replica-seconds for any policy that keeps every second within the SLO.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voxscale.series import FloatArray
from voxscale_lab.replay.policies.base import PolicyContext
from voxscale_lab.replay.view import View

IntArray = npt.NDArray[np.int64]


def oracle_schedule(need: IntArray, warmup: int, initial: int) -> IntArray:
    """Requested replicas per second (Ready + warming) for per-second needs `need`."""
    n = len(need)
    diff = np.zeros(n + 1, dtype=np.int64)
    for level in range(1, int(need.max(initial=0)) + 1):
        on = need >= level
        edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
        starts, ends = edges[0::2], edges[1::2]
        # Bridge gaps no longer than W: stopping and restarting would cost W anyway.
        keep = np.concatenate([[True], (starts[1:] - ends[:-1]) > warmup])
        run_starts = starts[keep]
        run_ends = np.concatenate([ends[:-1][keep[1:]], ends[-1:]])
        begin = run_starts - warmup
        if level <= initial:
            # Ready at t = 0 already: the first spell needs no warm-up if it starts within W.
            begin[0] = 0 if run_starts[0] <= warmup else begin[0]
        begin = np.clip(begin, 0, n)
        np.add.at(diff, begin, 1)
        np.add.at(diff, run_ends, -1)
    return np.asarray(np.cumsum(diff[:n]), dtype=np.int64)


class Oracle:
    name = "oracle"
    interval_seconds = 1.0

    def __init__(self, ctx: PolicyContext, arrivals: FloatArray) -> None:
        self.ctx = ctx
        need = np.ceil(arrivals / ctx.capacity_rps - 1e-9).astype(np.int64)
        need = np.maximum(need, ctx.min_replicas)
        self.schedule = oracle_schedule(need, round(ctx.warmup_seconds), ctx.initial_replicas)

    def step(self, now: float, view: View) -> int:
        return int(self.schedule[view.now_index])
