"""A yardstick for what no forecast skill can buy: a policy that knows the present, not the future.

The oracle (oracle.py) knows every future second, so it pays for nothing it does not use.
This one knows exactly the rate of the present second (the trace's own rate: no metric lag,
no Prometheus window, no Poisson noise) and nothing after it. It asks for that rate's replicas
with `headroom` on top, holds each ask for `hold_seconds`, and is let down the moment the hold
ends. Its pods still take the warm-up: a rise larger than the headroom within W seconds is a
violation, whatever it does.

Swept over headroom and hold, its cheapest setting within a violation budget says what a
policy that reads the present perfectly can reach on a trace. A policy whose forecast has
skill (it sees a rise coming) can do better; one whose forecast has none (the bursts of the
Azure code trace, one hour with no season to learn) cannot. It is a yardstick, not a proof:
a cleverer use of the past than "hold the recent peak" is not ruled out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

from voxscale.series import FloatArray
from voxscale_lab.replay.policies.base import PolicyContext
from voxscale_lab.replay.policies.oracle import IntArray
from voxscale_lab.replay.view import View

HEADROOMS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
"""Capacity above the present rate's need: none up to 4× the need."""
HOLDS_SECONDS = (0, 300, 900)
"""How long each ask is held: not at all, HPA's default scale-down window, a quarter hour.
The warm-up itself is added to the sweep (holding what just took W to come)."""


@dataclass(frozen=True)
class Setting:
    headroom: float
    hold_seconds: int

    def describe(self) -> str:
        return f"+{self.headroom * 100:.0f} % held {self.hold_seconds} s"


def settings(warmup_seconds: float) -> list[Setting]:
    """The sweep: every headroom × every hold, the warm-up among the holds."""
    holds = sorted({*HOLDS_SECONDS, round(warmup_seconds)})
    return [Setting(h, hold) for hold, h in itertools.product(holds, HEADROOMS)]


def present_schedule(rate: FloatArray, ctx: PolicyContext, setting: Setting) -> IntArray:
    """Replicas asked for each second: the present rate's need × (1 + headroom), at least
    min_replicas, the highest of the last `hold_seconds` (so 0 asks for this second's alone).

    Worked: 64 req/s at 63.8 per replica with +25 % headroom asks ceil(80 / 63.8) = 2; a spike
    to 640 for one second asks 13, and with a 300 s hold still 13 for the 300 s after it.
    """
    need = np.ceil(rate * (1.0 + setting.headroom) / ctx.capacity_rps - 1e-9)
    need = np.clip(need, ctx.min_replicas, ctx.max_replicas)
    if setting.hold_seconds > 0:
        size = setting.hold_seconds + 1
        # origin = size // 2 puts the window on [t - hold, t]: the past only.
        need = maximum_filter1d(need, size=size, origin=size // 2)
    return np.asarray(need, dtype=np.int64)


class PresentOracle:
    """One setting of the yardstick, as a replay policy (ticks every second)."""

    name = "present"
    interval_seconds = 1.0

    def __init__(self, ctx: PolicyContext, rate: FloatArray, setting: Setting) -> None:
        self.setting = setting
        self.schedule = present_schedule(rate, ctx, setting)

    def step(self, now: float, view: View) -> int:
        return int(self.schedule[view.now_index])


@dataclass(frozen=True)
class Reach:
    """The yardstick's cheapest setting within a violation budget (None: no setting is)."""

    budget_pct: float
    cost: float | None
    """× the oracle's replica-hours."""
    violations_pct: float | None
    setting: Setting | None
    w_spread_pp: float | None = None
    """Violation minutes the same setting adds from a 30 s to a 180 s warm-up (None: not run)."""


def cheapest_within(points: Sequence[tuple[Setting, float, float]], budget_pct: float) -> Reach:
    """From (setting, × oracle, violation-minute %) triples, the cheapest within the budget."""
    ok = [p for p in points if p[2] <= budget_pct and math.isfinite(p[1])]
    if not ok:
        return Reach(budget_pct, None, None, None)
    setting, cost, violations = min(ok, key=lambda p: (p[1], p[2]))
    return Reach(budget_pct, cost, violations, setting)
