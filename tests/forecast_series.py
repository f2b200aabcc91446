"""Synthetic rate series for the forecast tests."""

from __future__ import annotations

import numpy as np

from voxscale.series import History

DAY = 86400.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % DAY)  # a midnight, so phases are easy to read


def daily(
    days: float,
    step: float = 300.0,
    *,
    base: float = 100.0,
    swing: float = 50.0,
    growth_per_day: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> History:
    """base + swing·sin(2π·t/day) (peak at 06:00) growing by `growth_per_day`, with noise."""
    t = np.arange(int(days * DAY / step)) * step
    values = base + growth_per_day * t / DAY + swing * np.sin(2 * np.pi * t / DAY)
    values = values + np.random.default_rng(seed).normal(0.0, noise, t.size)
    return History.of(T0, step, np.clip(values, 0.0, None))


def truth(t: float, *, base: float = 100.0, swing: float = 50.0, growth: float = 0.0) -> float:
    return float(base + growth * (t - T0) / DAY + swing * np.sin(2 * np.pi * (t - T0) / DAY))
