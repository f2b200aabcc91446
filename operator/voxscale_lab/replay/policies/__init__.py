"""Replay policies, one file each, behind `ScalingPolicy.step(now, view) -> replicas`."""

from __future__ import annotations

from collections.abc import Mapping

from voxscale_lab.replay.policies.aws import AWSPredictive
from voxscale_lab.replay.policies.base import PolicyContext
from voxscale_lab.replay.policies.hpa import HPA
from voxscale_lab.replay.policies.keda import KEDA
from voxscale_lab.replay.policies.kpa import KPA
from voxscale_lab.replay.policies.oracle import Oracle
from voxscale_lab.replay.simulator import ScalingPolicy
from voxscale_lab.replay.workload import Workload

BASELINES = ("hpa", "keda", "kpa", "aws-predictive")
POLICY_NAMES = ("voxscale", *BASELINES, "oracle")


def build_policy(
    name: str, ctx: PolicyContext, workload: Workload, knobs: Mapping[str, object] | None = None
) -> ScalingPolicy:
    """A fresh policy (policies keep state) for one run.

    `knobs` override voxscale's spec fields by Policy attribute name (e.g.
    `scale_down_stabilization_seconds=600`), plus the forecast's `quantile` and `method`.
    """
    if name == "voxscale":
        from voxscale_lab.replay.policies.voxscale import VoxscalePolicy, policy_for

        extra = dict(knobs or {})
        forecast = {k: extra.pop(k) for k in ("quantile", "method") if k in extra}
        # A replay run is scored on replica counts: nothing reads its reasons (the demo's plan
        # builds its own VoxscalePolicy, which explains).
        return VoxscalePolicy(ctx, policy_for(ctx, **extra), explain=False, **forecast)  # type: ignore[arg-type]
    simple: dict[str, type[HPA] | type[KEDA] | type[KPA] | type[AWSPredictive]] = {
        "hpa": HPA, "keda": KEDA, "kpa": KPA, "aws-predictive": AWSPredictive,
    }
    if name in simple:
        return simple[name](ctx)
    if name == "oracle":
        return Oracle(ctx, workload.arrivals)
    raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICY_NAMES)}")


__all__ = ["BASELINES", "POLICY_NAMES", "PolicyContext", "build_policy"]
