"""Stabilize: bounded immediate scale-up; scale-down to the window's highest, at a bounded rate."""

from __future__ import annotations

import math
from typing import NamedTuple

from voxscale.api import Recommendation, ScalerState
from voxscale.decide.types import Policy
from voxscale.decide.units import ceil_ratio
from voxscale.decide.window import highest


class Stabilized(NamedTuple):
    replicas: int
    state: ScalerState
    reasons: tuple[str, ...] = ()


def stabilize(
    desired: int,
    current: int,
    *,
    base: int,
    panic: bool,
    policy: Policy,
    state: ScalerState,
    now: float,
    window_seconds: float | None = None,
    recommendations: list[Recommendation] | None = None,
) -> Stabilized:
    """Move from `current` toward `desired`. `state.recommendations` must already hold this
    tick's recommendation, or `recommendations` (the window with it pushed) stands in for
    them; `base` is ready + warming (see warming.py); `window_seconds` shortens the
    scale-down window (release.py), default the policy's."""
    if panic:
        # Knative: in panic the count only ratchets up, and the rate limit is off (the clamp
        # to max_replicas still applies); a burst is not the time to be polite.
        if desired < current:
            return Stabilized(current, state, (f"panic: holding {current}, never down in panic",))
        return Stabilized(desired, state)
    if desired > current:
        return limit_scale_up(desired, current, base=base, policy=policy, state=state, now=now)
    if desired < current:
        replicas, lines = limit_scale_down(desired, current, policy, state, now,
                                          window_seconds=window_seconds,
                                          recommendations=recommendations)
        return Stabilized(replicas, state, lines)
    return Stabilized(current, state)


def limit_scale_up(
    desired: int, current: int, *, base: int, policy: Policy, state: ScalerState, now: float
) -> Stabilized:
    """One step per 15 s period, of at most max(100% of base, 4 pods) above the base.

    HPA counts from the replicas at the period's start; we count from ready + warming, so
    pods stuck pending (no GPU) do not earn the right to ask for more: 10 asked for, 2 ready,
    8 pending and 30 desired gives 2 + max(2, 4) = 6 < 10, so nothing is added. A step at
    t=0 and ticks every 10 s means the next step comes at t=20, from the new base.
    """
    period = policy.scale_up_period_seconds
    last = state.last_scale_up_at
    if last is not None and last <= now < last + period:
        wait = last + period - now
        line = f"stabilize: scale-up to {desired} waits {wait:.0f} s (one step per {period:g} s)"
        return Stabilized(current, state, (line,))
    allowance = max(ceil_ratio(base * policy.scale_up_max_percent, 100.0), policy.scale_up_max_pods)
    limit = base + allowance
    replicas = max(current, min(desired, limit))
    if replicas == current:
        line = (f"stabilize: scale-up to {desired} held at {current}: only {base} ready + warming"
                f" (+{allowance} allowed)")
        return Stabilized(current, state, (line,))
    if replicas < desired:
        line = (f"stabilize: scale-up limited to {replicas} ({base} ready + warming"
                f" + max({policy.scale_up_max_percent:g}%, {policy.scale_up_max_pods})"
                f" per {period:g} s)")
        return Stabilized(replicas, state, (line,))
    return Stabilized(replicas, state)


def limit_scale_down(
    desired: int,
    current: int,
    policy: Policy,
    state: ScalerState,
    now: float,
    *,
    window_seconds: float | None = None,
    recommendations: list[Recommendation] | None = None,
) -> tuple[int, tuple[str, ...]]:
    """Go down only to the highest recommendation of the last 300 s, at most halving per step.

    A dip of one tick (load 30 → 12 → 30) must not cost 18 warm pods that take two minutes
    to come back; a real drop from 64 to 1 still reaches 1 after 300 s plus 6 halvings.
    The halving is max(1, floor(50% of current)) so that 1 → 0 is possible where min is 0.
    """
    window = policy.scale_down_stabilization_seconds if window_seconds is None else window_seconds
    recent = state.recommendations if recommendations is None else recommendations
    high = highest(recent, now, window)
    held = min(current, max(desired, high if high is not None else desired))
    lines: list[str] = []
    if held > desired:
        lines.append(f"stabilize: scale-down held at {held} (highest of last {window:.0f} s)")
    if held >= current:
        return current, tuple(lines)
    drop = max(1, math.floor(round(current * policy.scale_down_max_percent / 100.0, 9)))
    if held < current - drop:
        held = current - drop
        lines.append(
            f"stabilize: scale-down limited to {held}"
            f" (at most {policy.scale_down_max_percent:g}% of {current} per step)"
        )
    return held, tuple(lines)
