"""Cost-versus-violation fronts of replay policies, read at each other's operating points.

A policy is a curve, not a point: every autoscaler has a knob that buys fewer violations with
more replica-hours (a target utilisation, a forecast quantile). Comparing two default points
says little; comparing the curves at the same cost, or at the same violations, says which
policy is better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True)
class Point:
    setting: float
    """The knob's value (target utilisation, forecast quantile ...)."""
    cost: float
    """Replica-hours (or replica-hours ÷ the oracle's)."""
    violations: float
    """SLO-violation minutes, % of minutes with requests."""


def front(points: Sequence[Point]) -> list[Point]:
    """The non-dominated points, cheapest first (each cheaper one has more violations)."""
    out: list[Point] = []
    for p in sorted(points, key=lambda p: (p.cost, p.violations)):
        if not out or p.violations < out[-1].violations:
            out.append(p)
    return out


def violations_at_cost(points: Sequence[Point], cost: float) -> float | None:
    """Violations the policy reaches when it may spend `cost`: linear between its front's
    points; the front's best past its dearest point; None when even its cheapest costs more."""
    f = front(points)
    if not f or cost < f[0].cost:
        return None
    for lo, hi in pairwise(f):
        if lo.cost <= cost <= hi.cost:
            share = (cost - lo.cost) / (hi.cost - lo.cost) if hi.cost > lo.cost else 1.0
            return lo.violations + share * (hi.violations - lo.violations)
    return f[-1].violations


def cost_at_violations(points: Sequence[Point], violations: float) -> float | None:
    """The least cost at which the policy's violations are ≤ `violations` (linear between its
    front's points); None when no setting gets that low."""
    f = front(points)
    if not f or violations < f[-1].violations:
        return None
    if violations >= f[0].violations:
        return f[0].cost
    for lo, hi in pairwise(f):
        if hi.violations <= violations <= lo.violations:
            span = lo.violations - hi.violations
            share = (lo.violations - violations) / span if span > 0 else 1.0
            return lo.cost + share * (hi.cost - lo.cost)
    return None


@dataclass(frozen=True)
class Fold:
    held_out: str
    setting: float
    """The setting chosen on every other trace."""
    result: Point
    """What that setting scored on the held-out trace."""


NEAR_BEST = 1.25
"""Where no setting meets the budget on a trace, a setting within 25 % of the fewest violations
any setting reaches there still counts as holding it (1.76 % where the best is 1.6 % does)."""


def leave_one_trace_out(
    curves: Mapping[str, Sequence[Point]], violation_budget: float
) -> list[Fold]:
    """For each trace, the setting chosen without it: the cheapest (mean cost over the other
    traces) that holds every other trace to the budget, or, where no setting can, to within
    `NEAR_BEST` of the best any setting does there. A default is trace-independent when
    every fold picks the same setting."""
    folds = []
    for held in curves:
        others = [t for t in curves if t != held]
        limit = {t: max(violation_budget, NEAR_BEST * min(p.violations for p in curves[t]))
                 for t in others}
        ranked = []
        for s in sorted({p.setting for t in others for p in curves[t]}):
            got = [p for t in others if (p := at_setting(curves[t], s)) is not None
                   and p.violations <= limit[t]]
            if len(got) == len(others):
                ranked.append((sum(p.cost for p in got) / len(got), s))
        if not ranked:
            continue
        chosen = min(ranked)[1]
        result = at_setting(curves[held], chosen)
        if result is not None:
            folds.append(Fold(held, chosen, result))
    return folds


def at_setting(points: Sequence[Point], setting: float) -> Point | None:
    """The curve's point at `setting`, if it has one."""
    return next((p for p in points if p.setting == setting), None)
