"""voxscale itself: the operator's own decide() and ForecastCache, called as the control loop does.

Every `interval_seconds` (spec default 10 s) the loop observes the shard (served rate and the
SLO latency percentile over the metrics window, the served rate over the panic window, Triton's
queue, Ready/warming pods), records the created→Ready durations of pods that became Ready
since the last tick, asks the forecast cache for the horizon `horizon_seconds(policy, state)`
(learned warm-up + one interval) on the rate history at the forecast resolution (1 m; the
cache refits every `refitEvery`, 1 h), and applies `decide(obs, forecast, policy, state,
now)`, carrying `Decision.state` to the next tick.
"""

from __future__ import annotations

from dataclasses import replace

from voxscale.api import ForecastSpec, ScalerState
from voxscale.decide import (
    Decision,
    Forecast,
    Observation,
    PodCounts,
    Policy,
    ShardMetrics,
    decide,
    horizon_seconds,
    record_warmups,
)
from voxscale.forecast import ForecastCache
from voxscale.series import History
from voxscale_lab.replay.policies.base import PolicyContext
from voxscale_lab.replay.view import View

METRICS_WINDOW_SECONDS = 60.0
"""The PromQL window of the operator's rate and latency queries (metrics.promql DEFAULT_WINDOW)."""
SEASONALITY_SECONDS = 86_400.0
RESOLUTION_SECONDS = 60.0
REFIT_EVERY_SECONDS = 3600.0
QUANTILE = ForecastSpec().quantile
"""The spec's default forecast quantile: the replay plans as a default SpeechCluster does."""
METHOD = "holt-winters"
HISTORY_SECONDS = 7 * 86_400.0
"""The spec's forecast.history (7d): how much rate history the loop queries."""


def policy_for(ctx: PolicyContext, **knobs: object) -> Policy:
    """The decide() Policy of the replayed shard; `knobs` override spec fields by name."""
    base = Policy(
        min_replicas=ctx.min_replicas,
        max_replicas=ctx.max_replicas,
        capacity_rps=ctx.capacity_rps,
        slo_latency_ms=ctx.slo_ms,
        slo_percentile=ctx.percentile,
        service=ctx.service,
        declared_warmup_seconds=ctx.warmup_seconds,
    )
    return replace(base, **knobs)  # type: ignore[arg-type]


class VoxscalePolicy:
    name = "voxscale"

    def __init__(self, ctx: PolicyContext, policy: Policy | None = None, *,
                 quantile: float = QUANTILE, method: str = METHOD, explain: bool = True) -> None:
        self.ctx = ctx
        self.policy = policy or policy_for(ctx)
        self.interval_seconds = self.policy.interval_seconds
        self.state = ScalerState(last_replicas=ctx.initial_replicas)
        self.cache = ForecastCache(explain=explain)
        self.quantile, self.method = quantile, method
        self.explain = explain
        """False: decisions without reason lines (and forecasts without the calibration's words
        in `method`), for runs scored on replica counts only."""
        self.desired = ctx.initial_replicas
        self.last_decision: Decision | None = None
        self.last_forecast: Forecast | None = None
        """The latest tick's inputs and outcome, for timelines (the demo) and tests."""
        self._seen: tuple[History, History] | None = None

    def step(self, now: float, view: View) -> int:
        self.state = record_warmups(self.state, view.new_warmups)
        view.new_warmups.clear()
        obs = self.observe(now, view)
        forecast = None
        if self.policy.forecast_enabled:
            forecast = self.cache.forecast(
                "replay", self._history(view),
                horizon_seconds(self.policy, self.state), now,
                seasonality_seconds=SEASONALITY_SECONDS, refit_every_seconds=REFIT_EVERY_SECONDS,
                quantile=self.quantile, method=self.method,
            )
        decision = decide(obs, forecast, self.policy, self.state, now, explain=self.explain)
        self.state, self.desired = decision.state, decision.replicas
        self.last_decision, self.last_forecast = decision, forecast
        return decision.replicas

    def _history(self, view: View) -> History:
        """The rate history the loop queries (the last 7 days at 1 minute): the same object for
        the 6 ticks of a minute, so the cache can see at a glance that nothing moved."""
        whole = view.rate_history(RESOLUTION_SECONDS)
        if self._seen is None or self._seen[0] is not whole:
            self._seen = (whole, whole.last(HISTORY_SECONDS))
        return self._seen[1]

    def observe(self, now: float, view: View) -> Observation:
        metrics = ShardMetrics(
            at=now,
            rate=view.served_rate(METRICS_WINDOW_SECONDS),
            panic_rate=view.served_rate(self.policy.panic_window_seconds),
            latency_ms=view.latency_ms(METRICS_WINDOW_SECONDS, self.ctx.percentile),
            queue=view.queue,
            batch_efficiency=view.batch_efficiency(METRICS_WINDOW_SECONDS),
        )
        pods = PodCounts(asked=view.ready + view.warming, ready=view.ready, warming=view.warming)
        return Observation(metrics, pods)
