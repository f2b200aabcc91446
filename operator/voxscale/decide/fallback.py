"""Under overload, a bounded share of new interactive requests to the smaller model: the last step
of the degrade ladder, taken when capacity cannot come (maxReplicas, or GPUs that are not there).

A replica serving the smaller model sustains μ_f req/s at the SLO against the main model's μ_m,
so a request moved to it costs μ_m/μ_f of a main request. With a share s moved, the Ready
replicas carry λ·(1 − s) + λ·s·μ_m/μ_f main-equivalent req/s; the share that makes that fit
their SLO rate C is

    s = (λ − C) / (λ · (1 − μ_m/μ_f))

e.g. λ = 300 req/s on 4 Ready replicas of μ_m = 60 (C ≈ 207 req/s after the Poisson headroom),
μ_f = 180: s = 93 / (300 × 2/3) = 0.47, rounded up to 0.50 (the route's weight moves in steps
of 5 %), and never above maxShare. It enters at once, and is given back only after the Ready
capacity has needed less for the hold, one `stepDown` per tick: a worker that turns Ready and
dies loading its model on the first batch would otherwise send the callers back to a breach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voxscale import names
from voxscale.api import ScalerState
from voxscale.decide.evolve import updated
from voxscale.decide.types import FallbackPolicy, Observation, Policy

SHARE_STEP = 0.05
"""The share moves in steps of 5 %: the route's weights, re-applied only when one changes."""


@dataclass(frozen=True)
class FallbackStep:
    share: float
    state: ScalerState
    reasons: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    """(reason, message): ServingSmallerModel while the share is above 0, FallbackModelUnavailable
    while the smaller model is not loaded."""


REASON_SERVING = names.REASON_SERVING_SMALLER_MODEL
REASON_UNAVAILABLE = names.REASON_FALLBACK_MODEL_UNAVAILABLE


def required_share(rate: float, ready: int, policy: Policy, fb: FallbackPolicy) -> float:
    """The share of `rate` the smaller model must take for the Ready replicas to hold the SLO
    (0 when they already do; above 1 when even all of it would not fit)."""
    capacity = policy.capacity.rate_for(ready)
    if rate <= capacity:
        return 0.0
    saving = 1.0 - policy.capacity_rps / fb.capacity_rps
    if saving <= 0:
        return 0.0  # the smaller model serves no more per replica: moving traffic cannot help
    return (rate - capacity) / (rate * saving)


def _quantized(share: float, fb: FallbackPolicy) -> float:
    """Up to the next 5 %, within [0, maxShare]: erring high keeps the SLO."""
    stepped = math.ceil(round(share / SHARE_STEP, 6)) * SHARE_STEP if math.isfinite(share) else fb.max_share
    return round(min(fb.max_share, max(0.0, stepped)), 4)


def hold_fallback(state: ScalerState, fb: FallbackPolicy | None) -> FallbackStep | None:
    """No usable rate this tick: the share stays as it is (no data is no evidence either way)."""
    if fb is None:
        return None
    share = state.fallback_share
    problems = ((REASON_SERVING, _serving(share, fb, "held: no usable rate this tick")),) if share else ()
    return FallbackStep(share, state, (f"fallback: {fb.model} share {share:.0%} held (no data)",), problems)


def fallback_step(
    obs: Observation, needed: int, policy: Policy, fb: FallbackPolicy | None, state: ScalerState,
    *, now: float,
) -> FallbackStep | None:
    """The share of new interactive requests for the smaller model at `now`; None without one.

    `needed` is the shard's need before the clamp: above maxReplicas, or with pods Pending,
    capacity cannot come, and only then does a share start. Once started it follows what the
    Ready replicas need, whatever the cause, so pods that were Pending and are now warming do
    not end it before they are Ready."""
    if fb is None:
        return None
    if obs.fallback_loaded is False:
        cleared = updated(state, {"fallback_share": 0.0, "fallback_lower_since": None})
        why = (f"model {fb.model} is not loaded on the shard's workers (Triton exports no series for it):"
               " absent from the model repository, or failed to load; the main model serves everything")
        return FallbackStep(0.0, cleared, (f"fallback: {why}",), ((REASON_UNAVAILABLE, why),))
    rate = max(r for r in (obs.metrics.rate, obs.metrics.panic_rate, 0.0) if r is not None)
    pods, prev = obs.pods, state.fallback_share
    capped = needed > policy.max_replicas
    constrained = capped or pods.pending > 0
    raw = required_share(rate, pods.ready, policy, fb) if prev > 0 or constrained else 0.0
    target = _quantized(raw, fb)
    share, since = _hysteresis(prev, target, state.fallback_lower_since, policy, fb, now=now)
    why = _why(rate, pods.ready, raw, capped=capped, pending=pods.pending, policy=policy)
    lines = [f"fallback: {fb.model} share {prev:.0%} → {share:.0%} ({why})"] if share or prev else []
    if target < prev:
        hold, waited = _hold(policy, fb), now - (since if since is not None else now)
        lines.append(f"fallback: the Ready capacity needs {target:.0%}; " + (
            f"holding {prev:.0%} ({waited:.0f} of {hold:.0f} s)" if share == prev else
            f"lowering by at most {fb.step_down:.0%} a tick after the {hold:.0f} s hold"))
    new_state = updated(state, {"fallback_share": share, "fallback_lower_since": since})
    problems = ((REASON_SERVING, _serving(share, fb, why)),) if share else ()
    return FallbackStep(share, new_state, tuple(lines), problems)


def _hold(policy: Policy, fb: FallbackPolicy) -> float:
    return max(fb.hold_seconds, 2 * policy.interval_seconds)


def _hysteresis(
    prev: float, target: float, since: float | None, policy: Policy, fb: FallbackPolicy, *, now: float
) -> tuple[float, float | None]:
    """(share, lower-since): up at once; down only after the hold, by at most stepDown a tick."""
    if target >= prev:
        return target, None
    since = now if since is None else since
    if now - since < _hold(policy, fb):
        return prev, since
    share = round(max(target, prev - fb.step_down), 4)
    return share, since if share > target else None


def _why(rate: float, ready: int, raw: float, *, capped: bool, pending: int, policy: Policy) -> str:
    capacity = policy.capacity.rate_for(ready)
    cause = [f"need above maxReplicas {policy.max_replicas}"] if capped else []
    cause += [f"{pending} pod(s) Pending"] if pending else []
    need = "more than maxShare" if raw > 1 else f"{raw:.0%}"
    head = f"{rate:.0f} req/s on {ready} Ready replica(s) holding {capacity:.0f} at the SLO"
    return f"{head}; {', '.join(cause) or 'capacity can grow'}; needs {need}"


def _serving(share: float, fb: FallbackPolicy, why: str) -> str:
    return f"{share:.0%} of new interactive requests go to the smaller model {fb.model} ({why})"
