"""The plan: the forecast's highest rate over the horizon, corrected by what it missed, at the SLO."""

from __future__ import annotations

import math
from typing import NamedTuple

from voxscale.api import ScalerState
from voxscale.decide.capacity import CapacityModel
from voxscale.decide.evolve import updated
from voxscale.decide.types import Forecast, Policy


class Plan(NamedTuple):
    """Replicas the plan asks for (None = no usable forecast), the rate it planned, and why."""

    replicas: int | None
    rate: float | None = None
    reasons: tuple[str, ...] = ()
    state: ScalerState | None = None
    """The state with this tick's forecast miss carried (None: unchanged)."""


def plan_replicas(
    forecast: Forecast | None,
    observed: float | None,
    policy: Policy,
    state: ScalerState,
    *,
    horizon: float,
    now: float,
    capacity: CapacityModel | None = None,
    explain: bool = True,
    burst: float | None = None,
) -> Plan:
    """Replicas for the forecast's upper bound over [now, now + horizon] plus its recent miss.

    `forecast.upper` is the highest rate over the horizon at the policy's quantile, so a ramp
    that peaks at 412 rps 2 minutes out is asked for *now*: a replica asked for now serves only
    after the warm-up. The bound goes through the SLO capacity model (`Policy.plan_capacity`:
    at full capacity under a target override, since the quantile already is the margin for
    the rise).

    The observed rate corrects the plan's error instead of being a second count max'ed with
    it: when 130 rps is observed and the forecast expected 100 rps now, the forecast is 30 rps
    low, so the plan becomes upper + 30. The miss is carried for one horizon ("widen the band
    for a while"): a model that just missed is not trusted to be right again the next tick.

    `burst`, the panic-window rate (30 s), sees a miss first: a step from 100 to 300 rps shows
    in full there after 30 s, in the 1m rate only half of it. Its miss corrects this tick's
    plan but is not carried: a 30-s burst above the forecast is not yet a model that is wrong
    for the next horizon, and if it lasts, the 1m rate shows it and carries it a tick later.
    Replayed (1 day, W 30 / 120 / 180 s): ELB 2.06× / 4.03 % → 2.04× / 3.61 % at 120 s, and
    fewer violation minutes at the same cost on ELB, AAPL and Azure conv at each warm-up;
    carried like the 1m miss instead, it held Azure code's bursts for a horizon (1.76× → 2.02×).
    `explain=False`: the same plan without its reason lines (decide's replay path).
    """
    if not policy.forecast_enabled:
        return Plan(None)
    if forecast is None:
        return Plan(None, reasons=("plan: no forecast",))
    if not math.isfinite(forecast.upper):
        return Plan(None, reasons=(f"plan: forecast upper {forecast.upper} is not a number, ignored",))
    model = capacity or policy.plan_capacity
    upper = max(0.0, forecast.upper)
    miss, state, miss_line = _carried_miss(forecast, observed, state, horizon=horizon, now=now)
    burst_miss = _burst_miss(forecast, burst)
    if burst_miss > miss:
        miss = burst_miss
        if explain:
            miss_line = (*miss_line, f"plan: {burst:.1f} rps in the panic window > forecast"
                                     f" {forecast.current:.1f} now: +{burst_miss:.1f} rps this tick")
    rate = upper + miss
    n = model.replicas_for(rate)
    if not explain:
        return Plan(n, rate, (), state)
    line = f"plan: upper {upper:.1f} rps over {horizon:.0f} s"
    if miss >= 0.05:  # "+ missed 0.0" explains nothing
        line += f" + missed {miss:.1f}"
    line += f" → {n} ({model.describe(rate, n)}; {forecast.method})"
    if forecast.horizon_seconds + 1e-6 < horizon:
        line += f" (forecast covers only {forecast.horizon_seconds:.0f} s)"
    return Plan(n, rate, (*miss_line, line), state)


def _burst_miss(forecast: Forecast, burst: float | None) -> float:
    """How far the panic-window rate is above the forecast now (0: not above, or no data)."""
    if burst is None or not math.isfinite(burst) or forecast.current is None:
        return 0.0
    return max(0.0, burst - forecast.current)


def _carried_miss(
    forecast: Forecast, observed: float | None, state: ScalerState, *, horizon: float, now: float
) -> tuple[float, ScalerState, tuple[str, ...]]:
    """max(this tick's miss, the miss carried from the last horizon), and the state to carry."""
    carried = state.forecast_miss if (state.forecast_miss_until or 0.0) > now else 0.0
    fresh = 0.0
    if observed is not None and math.isfinite(observed) and forecast.current is not None:
        fresh = max(0.0, observed - forecast.current)
    if fresh > 0 and fresh >= carried:
        state = updated(state, {"forecast_miss": fresh, "forecast_miss_until": now + horizon})
        line = (f"plan: observed {observed:.1f} rps > forecast {forecast.current:.1f} now:"
                f" +{fresh:.1f} rps carried for {horizon:.0f} s")
        return fresh, state, (line,)
    if carried <= 0 and state.forecast_miss_until is not None:
        state = updated(state, {"forecast_miss": 0.0, "forecast_miss_until": None})
    return carried, state, ()

