"""All objects of one shard, in the order they should be applied."""

from __future__ import annotations

from typing import Any

from voxscale.api import ShardSpec, SpeechClusterSpec
from voxscale.render.common import Owner
from voxscale.render.configmap import render_configmap
from voxscale.render.deployment import render_deployment
from voxscale.render.pdb import render_pdb
from voxscale.render.service import render_service


def render_shard(
    owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec, *, drain_seconds: int | None = None
) -> list[dict[str, Any]]:
    """ConfigMap first: the Deployment's pods mount it. `drain_seconds`: the shard's learned
    drain (status), for a streaming worker's grace period."""
    pools = spec.placement.pools if spec.placement is not None else [None]
    return [
        render_configmap(owner, spec, shard),
        render_service(owner, spec, shard),
        render_pdb(owner, spec, shard),
        # spec.placement: one Deployment per pool (`<cluster>-<shard>-<pool>`); without it the
        # one `<cluster>-<shard>` of every earlier version, byte for byte.
        *(render_deployment(owner, spec, shard, drain_seconds=drain_seconds, pool=pool) for pool in pools),
    ]
