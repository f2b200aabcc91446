"""The shard's PodDisruptionBudget: voluntary evictions take at most one worker at a time."""

from __future__ import annotations

from typing import Any

from voxscale import names
from voxscale.api import ShardSpec, SpeechClusterSpec
from voxscale.render.common import Owner, metadata


def render_pdb(owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec) -> dict[str, Any]:
    # maxUnavailable rather than minAvailable: the replica count moves every few seconds,
    # and a fixed minAvailable would either block node drains at low scale or mean nothing
    # at high scale. One at a time costs at most 1/N of capacity during a drain.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(owner, spec, shard),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": names.selector_labels(owner.name, shard.name)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
