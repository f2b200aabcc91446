"""Predictive term: the replicas the forecast's upper bound needs over the planning horizon."""

from __future__ import annotations

import math

from voxscale.decide.step import Need
from voxscale.decide.types import Forecast, Policy
from voxscale.decide.units import replicas_for


def predictive_replicas(
    forecast: Forecast | None, policy: Policy, horizon: float, *, alone: bool = False
) -> Need:
    """ceil(upper ÷ capacity per replica); None when forecasting is off or there is no forecast.

    `forecast.upper` is already the highest upper bound over [now, now + horizon], so a ramp that
    peaks at 412 rps 2 minutes out needs ceil(412 / 20) = 21 replicas asked for *now*, because
    a replica asked for now serves only after the warm-up.

    Why full capacity and not capacity × target utilisation: the target's headroom exists for
    load that rises before new pods can be Ready, and the upper bound at the policy's quantile
    already *is* that rise. Dividing a bound by 0.7 as well paid twice for the same risk: on
    the Twitter trace the predictive term cost 2.45× the oracle's replica-hours at 0.83 %
    violation minutes, and 1.59× at 1.74 % without the double margin. The reactive term keeps
    the target: observed load, unlike a bound, has no headroom of its own. `alone` (the
    forecast-only fallback, with no reactive term beside it) keeps the target as well.
    """
    if not policy.forecast_enabled:
        return Need(None)
    if forecast is None:
        return Need(None, ("predictive: no forecast",))
    if not math.isfinite(forecast.upper):
        line = f"predictive: forecast upper {forecast.upper} is not a number, ignored"
        return Need(None, (line,))
    upper = max(0.0, forecast.upper)
    per = policy.per_replica_rps if alone else policy.capacity_rps
    n = replicas_for(upper, per)
    kind = "target" if alone else "capacity"
    line = (
        f"predictive: upper {upper:.1f} rps over {horizon:.0f} s / {per:.1f} rps {kind}"
        f" per replica = {n} ({forecast.method})"
    )
    if forecast.horizon_seconds + 1e-6 < horizon:
        line += f" (forecast covers only {forecast.horizon_seconds:.0f} s)"
    return Need(n, (line,))
