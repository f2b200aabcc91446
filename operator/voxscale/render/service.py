"""The shard's ClusterIP Service: Triton's HTTP, gRPC and metrics ports."""

from __future__ import annotations

from typing import Any

from voxscale import names
from voxscale.api import ShardSpec, SpeechClusterSpec
from voxscale.render.common import Owner, metadata

PORTS = (
    (names.PORT_NAME_HTTP, names.PORT_HTTP),
    (names.PORT_NAME_GRPC, names.PORT_GRPC),
    (names.PORT_NAME_METRICS, names.PORT_METRICS),
)


def render_service(owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, spec, shard),
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector_labels(owner.name, shard.name),
            "ports": [{"name": n, "port": p, "targetPort": n, "protocol": "TCP"} for n, p in PORTS],
        },
    }
