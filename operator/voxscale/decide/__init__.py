"""The pure decision engine: observation + forecast + policy + state at `now` -> Decision."""

from voxscale.decide.engine import decide
from voxscale.decide.restore import restore_state
from voxscale.decide.types import (
    Decision,
    Forecast,
    Observation,
    PodCounts,
    Policy,
    ShardMetrics,
)
from voxscale.decide.warmup import horizon_seconds, learned_warmup_seconds, record_warmups

__all__ = [
    "Decision",
    "Forecast",
    "Observation",
    "PodCounts",
    "Policy",
    "ShardMetrics",
    "decide",
    "horizon_seconds",
    "learned_warmup_seconds",
    "record_warmups",
    "restore_state",
]
