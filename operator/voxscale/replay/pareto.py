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


def leave_one_trace_out(
    curves: Mapping[str, Sequence[Point]], violation_budget: float
) -> list[Fold]:
    """For each trace, the setting chosen without it: the cheapest (mean cost over the other
    traces) that keeps violations within the budget on every other trace where some setting
    can; a trace no setting brings within budget (a burst no warm-up can catch) constrains
    nothing. A default is trace-independent when every fold picks the same setting."""
    folds = []
    for held in curves:
        others = [t for t in curves if t != held]
        feasible = [t for t in others if any(p.violations <= violation_budget for p in curves[t])]
        ranked = []
        for s in sorted({p.setting for t in others for p in curves[t]}):
            got = {t: at_setting(curves[t], s) for t in others}
            if any(p is None for p in got.values()):
                continue
            ok = all(got[t].violations <= violation_budget for t in feasible)  # type: ignore[union-attr]
            cost = sum(p.cost for p in got.values() if p) / len(got)
            viol = sum(p.violations for p in got.values() if p) / len(got)
            ranked.append((not ok, cost if ok else viol, s))
        if not ranked:
            continue
        chosen = min(ranked)[2]
        result = at_setting(curves[held], chosen)
        if result is not None:
            folds.append(Fold(held, chosen, result))
    return folds


def at_setting(points: Sequence[Point], setting: float) -> Point | None:
    """The curve's point at `setting`, if it has one."""
    return next((p for p in points if p.setting == setting), None)
