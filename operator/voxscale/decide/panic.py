"""Burst (panic) mode, after Knative's KPA: scale on the max and never down while it lasts."""

from __future__ import annotations

from typing import NamedTuple

from voxscale.api import ScalerState
from voxscale.decide.evolve import updated
from voxscale.decide.types import Policy


class Panic(NamedTuple):
    active: bool
    state: ScalerState
    reasons: tuple[str, ...] = ()


def breaches(desired: int, ready: int, load: bool, policy: Policy) -> bool:
    """desired ≥ threshold × ready, e.g. 20 wanted with 10 ready at 2.0×; with nothing ready,
    any load at all is a breach (there is no capacity to be a multiple of)."""
    if ready <= 0:
        return load
    return desired >= policy.panic_threshold * ready


def panic_step(
    desired: int, ready: int, *, load: bool, policy: Policy, state: ScalerState, now: float
) -> Panic:
    """Enter on a breach, stay while breaches keep coming, leave after a full stable window
    without one (Knative: panicking ends stableWindow after the last over-threshold tick).

    The forecast can trigger it too: a forecast that needs 2× the ready pods within one
    warm-up is a burst we can see coming, and rate-limiting it would make capacity late. So
    can the panic-window rate (Knative's panic metric): its need is part of the observed need
    (reactive.py), so 10 ready pods whose last 30 s needed 20 panic before the 1m rate moves.
    """
    if breaches(desired, ready, load, policy):
        since = state.panic_since if state.panic_since is not None else now
        until = now + policy.stable_window_seconds
        entering = "enter" if state.panic_since is None else "stay"
        line = (
            f"panic: {entering}, desired {desired} ≥ {policy.panic_threshold:g} × {ready} ready;"
            f" no scale-down and no scale-up limit for the next {policy.stable_window_seconds:g} s"
        )
        return Panic(True, updated(state, {"panic_since": since, "panic_until": until}),
                     (line,))
    if state.panic_until is not None and now < state.panic_until:
        left = state.panic_until - now
        return Panic(True, state, (f"panic: no breach, {left:.0f} s of the stable window left",))
    if state.panic_since is not None or state.panic_until is not None:
        cleared = updated(state, {"panic_since": None, "panic_until": None})
        stable = policy.stable_window_seconds
        return Panic(False, cleared, (f"panic: left after {stable:.0f} s without a breach",))
    return Panic(False, state)
