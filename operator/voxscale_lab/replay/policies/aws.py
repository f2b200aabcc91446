"""AWS EC2 Auto Scaling predictive scaling combined with a target-tracking policy.

Faithful to https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-predictive-scaling.html
and .../as-scaling-target-tracking.html:

* predictive: an hourly load forecast for the next 48 h, made from up to 14 days of history
  (at least 24 h needed), refreshed every 6 h; capacity for an hour = forecast load / target
  per instance, launched `SchedulingBufferTime` early (here = the warm-up W). AWS does not
  publish its model; we use the mean of the same hour over the past days (daily pattern);
* target tracking on ALBRequestCountPerTarget (1-minute CloudWatch datapoints, in-service
  instances only): scale out when 3 consecutive datapoints exceed the target, scale in when
  15 consecutive datapoints are below 90 % of it, scale-in cooldown 300 s;
* with both policies the group runs at the higher of the two capacities.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from voxscale.series import FloatArray
from voxscale_lab.replay.policies.base import PolicyContext, ceil_replicas
from voxscale_lab.replay.view import View

HOUR = 3600.0
REFRESH_SECONDS = 6 * HOUR
FORECAST_HOURS = 48
HISTORY_DAYS = 14
OUT_POINTS, IN_POINTS, IN_FRACTION, IN_COOLDOWN = 3, 15, 0.9, 300.0


def hourly_forecast(hourly: FloatArray, first_hour: int, hours: int) -> dict[int, float]:
    """Mean load of the same hour of day over up to 14 past days; {} with < 24 h of history.

    `hourly[i]` is the mean rate of hour `first_hour + i` (hours since the epoch).
    """
    if np.isfinite(hourly).sum() < 24:
        return {}
    end = first_hour + len(hourly)
    out: dict[int, float] = {}
    for h in range(end, end + hours):
        past = [h - 24 * d for d in range(1, HISTORY_DAYS + 1)]
        vals = [hourly[p - first_hour] for p in past if first_hour <= p < end]
        vals = [v for v in vals if math.isfinite(v)]
        if vals:
            out[h] = float(np.mean(vals))
    return out


class AWSPredictive:
    name = "aws-predictive"
    interval_seconds = 60.0

    def __init__(self, ctx: PolicyContext) -> None:
        self.ctx = ctx
        self.buffer = ctx.warmup_seconds
        self.forecast: dict[int, float] = {}
        self.refreshed_at = -math.inf
        self.points: deque[float] = deque(maxlen=IN_POINTS)
        self.tracking = ctx.initial_replicas
        self.scaled_in_at = -math.inf

    def step(self, now: float, view: View) -> int:
        if now - self.refreshed_at >= REFRESH_SECONDS:
            self._refresh(now, view)
        return self.ctx.clamp(max(self._predicted(now), self._track(now, view)))

    def _refresh(self, now: float, view: View) -> None:
        minutes = view.rate_history(60.0, served=False)
        days = minutes.last(HISTORY_DAYS * 86_400.0)
        hour0 = math.ceil(days.start / HOUR)
        skip = round((hour0 * HOUR - days.start) / 60.0)
        whole = (len(days) - skip) // 60
        if whole <= 0:
            return
        hourly = days.values[skip : skip + whole * 60].reshape(whole, 60).mean(axis=1)
        self.forecast = hourly_forecast(hourly, hour0, FORECAST_HOURS)
        self.refreshed_at = now

    def _predicted(self, now: float) -> int:
        hours = {math.floor(now / HOUR), math.floor((now + self.buffer) / HOUR)}
        loads = [self.forecast[h] for h in hours if h in self.forecast]
        return ceil_replicas(max(loads), self.ctx.per_replica_target) if loads else 0

    def _track(self, now: float, view: View) -> int:
        rate = view.arrival_rate(60.0)
        if rate is None or view.ready == 0:
            return self.tracking
        target = self.ctx.per_replica_target
        self.points.append(rate / view.ready)  # requests per in-service target, per second
        recent = list(self.points)
        wanted = ceil_replicas(rate, target)
        if len(recent) >= OUT_POINTS and all(p > target for p in recent[-OUT_POINTS:]):
            self.tracking = max(self.tracking, wanted)
        elif (
            len(recent) >= IN_POINTS
            and all(p < IN_FRACTION * target for p in recent)
            and now - self.scaled_in_at >= IN_COOLDOWN
        ):
            self.tracking, self.scaled_in_at = min(self.tracking, max(wanted, 1)), now
        return self.tracking
