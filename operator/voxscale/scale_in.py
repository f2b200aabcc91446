"""Stream-aware scale-in (spec.streaming): before lowering replicas, each pod's deletion cost
from its live streams, so the ReplicaSet controller removes the idlest (blocking)."""

from __future__ import annotations

from typing import Any, Protocol

from voxscale import names
from voxscale.decide.victims import rank_scale_in
from voxscale.metrics.protocol import MetricsSource, ShardSelector
from voxscale.pods import scale_in_candidates


class PodAPI(Protocol):
    """What scale-in needs from Kubernetes (voxscale.k8s.Kube implements it)."""

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...


def set_deletion_costs(
    kube: PodAPI, source: MetricsSource, selector: ShardSelector, *, live: int, target: int, now: float
) -> str:
    """Read the shard's pods and their live streams, patch each changed deletion cost; the line
    says which streams the pods to be removed hold."""
    labels = names.selector_labels(selector.cluster, selector.shard)
    pods = scale_in_candidates(
        kube.list_pods(selector.namespace, ",".join(f"{k}={v}" for k, v in labels.items())),
        source.pod_streams(selector, now).by_pod,
    )
    plan = rank_scale_in(pods, len(pods) - target)
    for name, cost in plan.changed(pods):
        annotations = {names.ANNOTATION_POD_DELETION_COST: cost}
        kube.patch_pod(selector.namespace, name, {"metadata": {"annotations": annotations}})
    unknown = sum(p.streams is None for p in pods)
    why = f" ({unknown} of {len(pods)} pods without stream data count as busy)" if unknown else ""
    return f"scale-in {live} → {target}: {plan.summary()}{why}"
