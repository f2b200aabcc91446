"""Metadata shared by every per-shard object: names, labels, owner reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxscale import names
from voxscale.api import ShardSpec, SpeechClusterSpec


@dataclass(frozen=True)
class Owner:
    """The SpeechCluster that owns the rendered objects (for garbage collection)."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": names.API_VERSION,
            "kind": names.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def labels(owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec) -> dict[str, str]:
    return names.common_labels(owner.name, shard.name, shard.region, spec.model.name)


def metadata(owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec) -> dict[str, Any]:
    return {
        "name": names.shard_resource_name(owner.name, shard.name),
        "namespace": owner.namespace,
        "labels": labels(owner, spec, shard),
        "ownerReferences": [owner.reference()],
    }
