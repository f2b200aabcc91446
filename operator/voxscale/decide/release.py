"""Predictive scale-in: release capacity when the forecast and the observed load both leave."""

from __future__ import annotations

from voxscale.decide.types import Policy


def release_window(
    planned: int | None, observed: int, current: int, *, policy: Policy, horizon: float
) -> tuple[float, tuple[str, ...]]:
    """Seconds of observed needs the scale-down holds on to, and why when it is short.

    The window rule holds the highest observed need of the last 300 s, because a dip of one
    tick must not cost warm pods. When the forecast *also* says fewer are needed over the next
    horizon (its bound, error band included, is below the current count), the dip is the load
    leaving, not noise: the shard keeps only what the last horizon observed (130 s at a 120 s
    warm-up), which is also what it would take to bring a released pod back. A rise the
    forecast sees within one warm-up keeps `planned` at or above `current`: then nothing is
    released early.
    """
    full = policy.scale_down_stabilization_seconds
    if planned is None or planned >= current or observed >= current or horizon >= full:
        return full, ()
    line = (f"release: plan {planned} and observed {observed} both below {current}:"
            f" hold the highest need of {horizon:.0f} s, not {full:.0f} s")
    return horizon, (line,)
