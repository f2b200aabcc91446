"""Predictive term: the replicas the forecast's upper bound needs over the planning horizon."""

from __future__ import annotations

import math

from voxscale.decide.step import Need
from voxscale.decide.types import Forecast, Policy
from voxscale.decide.units import replicas_for


def predictive_replicas(forecast: Forecast | None, policy: Policy, horizon: float) -> Need:
    """ceil(upper ÷ per-replica rps); None when forecasting is off or there is no usable forecast.

    `forecast.upper` is already the highest upper bound over [now, now + horizon], so a ramp that
    peaks at 412 rps 2 minutes out needs ceil(412 / 14) = 30 replicas asked for *now*, because
    a replica asked for now serves only after the warm-up.
    """
    if not policy.forecast_enabled:
        return Need(None)
    if forecast is None:
        return Need(None, ("predictive: no forecast",))
    if not math.isfinite(forecast.upper):
        line = f"predictive: forecast upper {forecast.upper} is not a number, ignored"
        return Need(None, (line,))
    upper = max(0.0, forecast.upper)
    per = policy.per_replica_rps
    n = replicas_for(upper, per)
    line = (
        f"predictive: upper {upper:.1f} rps over {horizon:.0f} s / {per:.1f} rps per replica = {n}"
    )
    if forecast.horizon_seconds + 1e-6 < horizon:
        line += f" (forecast covers only {forecast.horizon_seconds:.0f} s)"
    return Need(n, (line,))
