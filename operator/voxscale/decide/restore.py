"""Resume after an operator restart without letting an empty window dip the shard."""

from __future__ import annotations

from voxscale.api import Recommendation, ScalerState


def restore_state(stored: ScalerState | None, ready: int, now: float) -> ScalerState:
    """The stored state when there is one; otherwise a state whose window holds `ready`.

    With an empty window the first tick after a restart could act on whatever the rate says
    while it is still refilling and halve 20 ready pods straight away; a seed of 20 at `now`
    makes scale-down wait the full stabilization window, as if the operator had never left.
    A state that decide() has never written (no recommendation, no last count) counts as none;
    a real one is returned as is, so calling this on every tick never pins the window.
    `last_replicas` stays unset: the Deployment's live spec.replicas is the better "current"
    (20 ready + 5 warming is 25, and seeding 20 as what we asked for would drop the 5).
    """
    if stored is not None and (stored.recommendations or stored.last_replicas is not None):
        return stored
    fresh = stored if stored is not None else ScalerState()
    seed = max(0, ready)
    return fresh.model_copy(update={"recommendations": [Recommendation(at=now, replicas=seed)]})
