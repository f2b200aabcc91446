"""The model's config.pbtxt (Triton dynamic batching from the spec) and the ConfigMap that holds it."""

from __future__ import annotations

import hashlib
from typing import Any

from voxscale import names
from voxscale.api import ShardSpec, SpeechClusterSpec
from voxscale.render.common import Owner, metadata


def render_model_config(spec: SpeechClusterSpec) -> str:
    """Triton model configuration in protobuf text format.

    Inputs and outputs are left to Triton's config auto-complete (the backend fills them
    from the model), so this file only carries what the operator decides: batching,
    instances, version and the queue policy.
    """
    b = spec.batching
    kind = "KIND_GPU" if spec.worker.gpus > 0 else "KIND_CPU"
    lines = [f'name: "{spec.model.name}"']
    if spec.model.backend:
        lines.append(f'backend: "{spec.model.backend}"')
    lines += [
        f"max_batch_size: {b.max_batch_size}",
        f"version_policy: {{ specific: {{ versions: [ {spec.model.version} ] }} }}",
        f"instance_group [ {{ count: {b.instance_count}, kind: {kind} }} ]",
        "dynamic_batching {",
    ]
    if b.preferred_batch_sizes:
        sizes = ", ".join(str(s) for s in b.preferred_batch_sizes)
        lines.append(f"  preferred_batch_size: [ {sizes} ]")
    lines.append(f"  max_queue_delay_microseconds: {b.max_queue_delay_microseconds}")
    if b.queue_timeout_microseconds > 0:
        # Reject rather than serve a request that already missed its deadline: a late
        # answer costs GPU time and still violates the SLO.
        lines += [
            "  default_queue_policy {",
            "    timeout_action: REJECT",
            f"    default_timeout_microseconds: {b.queue_timeout_microseconds}",
            "    allow_timeout_override: true",
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def config_hash(text: str) -> str:
    """Short content hash put on the pod template, so a config change rolls the pods."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render_configmap(owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, spec, shard),
        "data": {names.MODEL_CONFIG_FILE: render_model_config(spec)},
    }
