"""Degrade, never guess: hold when metrics are unusable, then a ladder of fallbacks, never down."""

from __future__ import annotations

import math
from typing import NamedTuple

from voxscale.api import Mode, ScalerState, Term
from voxscale.decide.predictive import plan_replicas
from voxscale.decide.types import Forecast, Observation, Policy


class Degraded(NamedTuple):
    replicas: int
    mode: Mode
    term: Term
    predictive: int | None
    degraded: tuple[str, ...]
    reasons: tuple[str, ...]


def forecast_only_ticks(policy: Policy, horizon: float) -> int:
    """How long the forecast-only step lasts: a forecast fitted on history that stopped when
    the metrics did covers one horizon ahead (130 s / 10 s = 13 ticks); past that it is
    extrapolation of extrapolation, and only the floor is left."""
    return max(1, math.ceil(horizon / policy.interval_seconds))


def degrade(
    obs: Observation,
    forecast: Forecast | None,
    policy: Policy,
    state: ScalerState,
    horizon: float,
    *,
    now: float,
) -> Degraded:
    """failures 1..threshold-1: hold; then forecast-only (if a forecast exists) for one horizon;
    then the fallback floor. Every step is max(current, ready, ...): metrics vanishing is never
    evidence that load went down."""
    failures = state.failures + 1
    held = max(obs.pods.asked, obs.pods.ready)
    why = "; ".join(obs.metrics.errors) or "no usable rate"
    lines = [f"metrics: unusable ({why}), failure {failures} of {policy.failure_threshold}"]
    if failures < policy.failure_threshold:
        lines.append(f"hold: {held} = max(current {obs.pods.asked}, ready {obs.pods.ready})")
        return Degraded(held, "hold", "hold", None, ("metrics-unavailable",), tuple(lines))
    # Alone, with nothing observed to correct it, the plan keeps the no-forecast headroom.
    pred = plan_replicas(forecast, None, policy, state, horizon=horizon, now=now,
                         capacity=policy.capacity_without_forecast)
    in_forecast_step = failures < policy.failure_threshold + forecast_only_ticks(policy, horizon)
    if pred.replicas is not None and in_forecast_step:
        replicas = max(held, pred.replicas)
        lines.extend(pred.reasons)
        lines.append(f"fallback: forecast only, {replicas} (never below {held})")
        flags = ("metrics-unavailable", "fallback-forecast-only")
        return Degraded(replicas, "fallback", "fallback", pred.replicas, flags, tuple(lines))
    floor = policy.fallback_replicas
    replicas = max(held, floor) if floor is not None else held
    lines.append(f"fallback: floor {floor if floor is not None else 'unset'}, {replicas}"
                 f" (never below {held})")
    flags = ("metrics-unavailable", "fallback-floor")
    return Degraded(replicas, "fallback", "fallback", None, flags, tuple(lines))
