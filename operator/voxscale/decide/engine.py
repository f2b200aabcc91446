"""decide(): one pure tick for one shard, the named steps composed in order."""

from __future__ import annotations

from voxscale.api import Recommendation, ScalerState, Term
from voxscale.decide.batching import calibrate_service_time
from voxscale.decide.blend import Blended, blend
from voxscale.decide.clamp import Clamped, clamp
from voxscale.decide.classes import BatchPlan, plan_batch
from voxscale.decide.degrade import degrade
from voxscale.decide.evolve import updated
from voxscale.decide.fallback import fallback_step, hold_fallback
from voxscale.decide.panic import panic_step
from voxscale.decide.predictive import plan_replicas
from voxscale.decide.reactive import Reactive, reactive_replicas
from voxscale.decide.release import release_window
from voxscale.decide.stabilize import stabilize
from voxscale.decide.streams import StreamNeed, stream_replicas
from voxscale.decide.types import ClassNeed, Decision, Forecast, Observation, Policy
from voxscale.decide.warming import warming_capacity
from voxscale.decide.warmup import horizon_after, learned_warmup_seconds
from voxscale.decide.window import prune, push

MAX_REASONS = 16
"""ShardStatus.reasons holds at most 16 lines."""


def decide(
    obs: Observation, forecast: Forecast | None, policy: Policy, state: ScalerState, now: float,
    *, explain: bool = True,
) -> Decision:
    """How many replicas the shard should have at `now`, why, and the state for the next tick.

    Pure: same inputs, same Decision. Steps: horizon → plan (forecast at the SLO, corrected by
    what it missed) → observed → blend → clamp (the recommendation) → panic → warm-up
    accounting → release → stabilize → clamp. Unusable metrics take the degrade ladder
    instead and never scale down.

    `explain=False` leaves `Decision.reasons` empty and everything else as it is: for replays
    that score replica counts only (formatting the observed and planned lines cost ~10 µs of
    a ~45 µs tick). The operator always explains: the reasons are what status shows.
    """
    warmup = learned_warmup_seconds(policy, state)
    horizon = horizon_after(warmup, policy)
    # Only stabilize reads the window, after this tick's recommendation is pushed onto it, so
    # the pruned list goes straight into that push: one state copy a tick fewer.
    pruned = prune(state.recommendations, now, policy.scale_down_stabilization_seconds)
    if not obs.metrics.usable:
        return _degraded(obs, forecast, policy, state, now=now, horizon=horizon, warmup=warmup,
                         pruned=pruned, explain=explain)
    return _decided(obs, forecast, policy, state, now=now, horizon=horizon, warmup=warmup,
                    pruned=pruned, explain=explain)


def _decided(
    obs: Observation,
    forecast: Forecast | None,
    policy: Policy,
    state: ScalerState,
    *,
    now: float,
    horizon: float,
    warmup: float,
    pruned: list[Recommendation],
    explain: bool,
) -> Decision:
    pods = obs.pods
    calibrated = calibrate_service_time(policy, obs.metrics, pods.ready, state, explain=explain)
    policy, state = calibrated.policy, calibrated.state
    plan = plan_replicas(forecast, obs.metrics.rate, policy, state, horizon=horizon, now=now,
                         explain=explain, burst=obs.metrics.panic_rate)
    state = plan.state or state
    # A calibrated plan's bound is the headroom for a rise within the horizon, so the observed
    # rate only corrects it at the SLO. A plan whose band was never scored (the first half hour,
    # or no plan at all) says nothing about how fast load rises: observed load keeps the
    # growth headroom (on the 1-hour Azure traces, dropping it tripled violation minutes).
    trusted = plan.replicas is not None and forecast is not None and forecast.calibrated
    observed_model = policy.capacity if trusted else policy.capacity_without_forecast
    reac = reactive_replicas(obs.metrics, pods.ready, policy, observed_model, drain_seconds=horizon,
                             explain=explain)
    # spec.streaming: live streams fill sequence slots whatever their rate; the slots they
    # need are an observed need too (streams.py), and the larger of the two counts.
    reac = _with_streams(reac, stream_replicas(obs.streams, policy))
    blended = blend(plan.replicas, reac.replicas, explain=explain)
    # spec.classes: the Batch needs ride on top of the interactive one (classes.py); without
    # classes `batch` adds 0 and holds nothing, and every step below is as it always was.
    batch = plan_batch(obs.classes, policy, state, horizon=horizon)
    state = batch.state or state
    rec = clamp(blended.desired + batch.replicas, policy)
    # The window holds what was *observed*: a calibrated plan already looks one horizon ahead,
    # so following it down cannot leave the next warm-up short. Otherwise, all of it.
    held = clamp(reac.replicas + batch.replicas, policy).replicas if trusted else rec.replicas
    # Only stabilize reads the window (panic does not): it is handed over, and joins the
    # state in the tick's last copy (_next_state) instead of a copy of its own.
    recommendations = push(pruned, now, held)
    # Panic is an interactive burst: interactive requests go first on every ready replica, so
    # a batch submission of twice the ready pods is a backlog to plan, not a burst to chase.
    panic = panic_step(
        clamp(blended.desired, policy).replicas, pods.ready, load=blended.desired > 0,
        policy=policy, state=state, now=now,
    )
    capacity = warming_capacity(rec.replicas, pods, explain=explain)
    planned = plan.replicas + batch.replicas if trusted and plan.replicas is not None else None
    window, release_reasons = release_window(planned, reac.replicas + batch.replicas,
                                             pods.asked, policy=policy, horizon=horizon)
    moved = stabilize(
        rec.replicas,
        pods.asked,
        base=capacity.base,
        panic=panic.active,
        policy=policy,
        state=panic.state,
        now=now,
        window_seconds=window,
        recommendations=recommendations,
    )
    kept, hold_reasons = _hold_for_classes(moved.replicas, pods.asked, batch)
    final = clamp(kept, policy)
    # spec.model.fallback, the ladder's last step: when capacity cannot come, a share of new
    # interactive requests to the smaller model (fallback.py); None without one.
    next_state = _next_state(moved.state, pods.asked, final.replicas, now, failures=0,
                             recommendations=recommendations)
    fb = fallback_step(obs, blended.desired + batch.replicas, policy, policy.fallback, next_state, now=now)
    reasons = (
        *calibrated.reasons, *plan.reasons, *reac.reasons, *blended.reasons, *rec.reasons,
        *(fb.reasons if fb else ()),
        *panic.reasons, *capacity.reasons, *release_reasons, *moved.reasons,
        *batch.reasons, *hold_reasons, *(final.reasons if final.bound else ()),
    ) if explain else ()
    return Decision(
        replicas=final.replicas,
        mode="panic" if panic.active else "stable",
        term=_winning_term(blended, rec, final, pods.asked),
        reasons=reasons[:MAX_REASONS],
        state=fb.state if fb else next_state,
        horizon_seconds=horizon,
        learned_warmup_seconds=warmup,
        predictive=plan.replicas,
        reactive=reac.replicas,
        planned_rate=plan.rate,
        classes=_class_needs(policy, blended.desired, obs, batch),
        class_problems=batch.problems,
        fallback_share=fb.share if fb else None,
        fallback_problems=fb.problems if fb else (),
    )


def _with_streams(reac: Reactive, streams: StreamNeed) -> Reactive:
    if streams.replicas > reac.replicas:
        line = f"observed: streams need {streams.replicas} > rate's {reac.replicas}"
        return Reactive(streams.replicas, (*reac.reasons, *streams.reasons, line))
    return reac._replace(reasons=(*reac.reasons, *streams.reasons))


def _degraded(
    obs: Observation,
    forecast: Forecast | None,
    policy: Policy,
    state: ScalerState,
    *,
    now: float,
    horizon: float,
    warmup: float,
    pruned: list[Recommendation],
    explain: bool,
) -> Decision:
    step = degrade(obs, forecast, policy, state, horizon, now=now)
    final = clamp(step.replicas, policy)
    held = hold_fallback(state, policy.fallback)  # no usable rate: the share stays as it is
    # Batch needs are still read and shown, but the ladder holds the shard: with no interactive
    # rate there is no base to add them to (and never a scale-down).
    batch = plan_batch(obs.classes, policy, state, horizon=horizon)
    state = batch.state or state
    # The held count enters the window, so when metrics come back the shard does not drop
    # the moment one low reading arrives: the scale-down still waits the full window.
    state = updated(state, {"recommendations": push(pruned, now, final.replicas)})
    return Decision(
        replicas=final.replicas,
        mode=step.mode,
        term=step.term,
        reasons=(*step.reasons, *final.reasons)[:MAX_REASONS] if explain else (),
        state=_next_state(state, obs.pods.asked, final.replicas, now, failures=state.failures + 1),
        horizon_seconds=horizon,
        learned_warmup_seconds=warmup,
        predictive=step.predictive,
        degraded=step.degraded,
        classes=_class_needs(policy, None, obs, batch),
        class_problems=batch.problems,
        fallback_share=held.share if held else None,
        fallback_problems=held.problems if held else (),
    )


def _hold_for_classes(replicas: int, current: int, batch: BatchPlan) -> tuple[int, tuple[str, ...]]:
    """A Batch class without data: its queue may be as full as ever, so no scale-down."""
    if not batch.hold or replicas >= current:
        return replicas, ()
    return current, (f"classes: holding {current}, not {replicas}: a batch class has no data",)


def _class_needs(
    policy: Policy, interactive: int | None, obs: Observation, batch: BatchPlan
) -> tuple[ClassNeed, ...]:
    """The Interactive need (its blended plan and observed need), then each Batch class's."""
    if policy.interactive_class is None:
        return ()
    rate = obs.metrics.rate if obs.metrics.usable else None
    return (ClassNeed(policy.interactive_class, "Interactive", interactive, rate=rate), *batch.needs)


def _winning_term(blended: Blended, rec: Clamped, final: Clamped, current: int) -> Term:
    """The term that set the count: a bound if one did, 'current' if stabilization held."""
    if final.bound is not None:
        return final.bound
    if rec.bound is not None and final.replicas == rec.replicas:
        return rec.bound
    if final.replicas == current and rec.replicas != current:
        return "current"
    return blended.term


def _next_state(
    state: ScalerState, current: int, replicas: int, now: float, failures: int, *,
    recommendations: list[Recommendation] | None = None,
) -> ScalerState:
    update: dict[str, object] = {"failures": failures, "last_replicas": replicas}
    if recommendations is not None:
        update["recommendations"] = recommendations
    if replicas > current:
        update["last_scale_up_at"] = now
    elif replicas < current:
        update["last_scale_down_at"] = now
    return updated(state, update)
