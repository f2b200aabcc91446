"""The model's config.pbtxt (Triton dynamic or sequence batching, from the spec) and its ConfigMap."""

from __future__ import annotations

import hashlib
from typing import Any

from voxscale import names
from voxscale.api import BatchingSpec, ShardSpec, SpeechClusterSpec, StreamingSpec
from voxscale.render.common import Owner, metadata
from voxscale.render.fallback_model import fallback_spec


def render_model_config(spec: SpeechClusterSpec) -> str:
    """Triton model configuration in protobuf text format.

    Inputs and outputs are left to Triton's config auto-complete (the backend fills them
    from the model), so this file only carries what the operator decides: batching (dynamic,
    or sequence batching when spec.streaming is set), instances, version and the queue policy.
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
    ]
    if spec.streaming is not None:
        return "\n".join(lines + _sequence_batching(b, spec.streaming)) + "\n"
    lines.append("dynamic_batching {")
    lines += _batch_sizes(b, "  ")
    if spec.classes:
        lines += _priority_levels(spec)
    elif b.queue_timeout_microseconds > 0:
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


def _priority_levels(spec: SpeechClusterSpec) -> list[str]:
    """spec.classes as Triton priority levels: one queue per class, untagged requests in the
    Interactive one, and a queue policy per class (docs/classes.md).

    The batcher fills each batch from the highest priority first, so batch work only rides in
    what interactive requests leave. Interactive: batching.queueTimeoutMicroseconds set, a
    request queued that long is rejected, as without classes; unset, one queued for the whole
    SLO (500 ms) has missed it whatever happens next, so it is DELAYed behind the interactive
    requests that can still make it, yet stays ahead of every batch request. Batch: no
    timeout (a late transcript beats a failed job; the deadline is kept by capacity, not by
    dropping work), and a client may still set its own per request.
    """
    classes = spec.classes or []
    interactive = spec.interactive_class
    if interactive is None:  # api.check_classes refuses such a spec
        raise ValueError("spec.classes has no Interactive class")
    timeout = spec.batching.queue_timeout_microseconds
    lines = [
        f"  priority_levels: {max(c.priority for c in classes)}",
        f"  default_priority_level: {interactive.priority}",
    ]
    for c in sorted(classes, key=lambda c: c.priority):
        if c.kind == "Interactive":
            action, micros = ("REJECT", timeout) if timeout > 0 else (
                "DELAY", round(spec.slo.latency_ms * 1000))
        else:
            action, micros = "DELAY", 0
        lines += [
            f"  # class {c.name} ({c.kind})",
            "  priority_queue_policy {",
            f"    key: {c.priority}",
            "    value {",
            f"      timeout_action: {action}",
            f"      default_timeout_microseconds: {micros}",
            "      allow_timeout_override: true",
            "    }",
            "  }",
        ]
    return lines


def _batch_sizes(b: BatchingSpec, indent: str) -> list[str]:
    lines = []
    if b.preferred_batch_sizes:
        sizes = ", ".join(str(s) for s in b.preferred_batch_sizes)
        lines.append(f"{indent}preferred_batch_size: [ {sizes} ]")
    lines.append(f"{indent}max_queue_delay_microseconds: {b.max_queue_delay_microseconds}")
    return lines


def _control(name: str, kind: str, value: str) -> str:
    return f'    {{ name: "{name}", control [ {{ kind: {kind}, {value} }} ] }}'


def _sequence_batching(b: BatchingSpec, s: StreamingSpec) -> list[str]:
    """Triton's sequence batcher, Oldest strategy, and the session limit as a model parameter.

    Oldest, not Direct: the stand-in (like a streaming ASR model with its own decoder
    state) keeps each stream's state by correlation ID, not in a batch slot, so a stream may
    run in any slot, and the batcher forms batches across up to maxConcurrentSequences live
    streams (Direct would cap them at maxBatchSize x instances, 32 with the defaults). There is
    no queue policy: a chunk of a live stream is never rejected for waiting.
    """
    flags = "int32_false_true: [ 0, 1 ]"
    return [
        "sequence_batching {",
        f"  max_sequence_idle_microseconds: {s.session_idle_timeout_seconds * 1_000_000}",
        "  control_input [",
        _control(names.SEQUENCE_START_INPUT, "CONTROL_SEQUENCE_START", flags) + ",",
        _control(names.SEQUENCE_END_INPUT, "CONTROL_SEQUENCE_END", flags) + ",",
        _control(names.SEQUENCE_READY_INPUT, "CONTROL_SEQUENCE_READY", flags) + ",",
        _control(names.SEQUENCE_CORRID_INPUT, "CONTROL_SEQUENCE_CORRID", "data_type: TYPE_UINT64"),
        "  ]",
        "  oldest {",
        f"    max_candidate_sequences: {s.max_concurrent_sequences_per_replica}",
        *_batch_sizes(b, "    "),
        "  }",
        "}",
        "parameters {",
        f'  key: "{names.MODEL_PARAM_MAX_SESSION_SECONDS}"',
        f'  value: {{ string_value: "{s.max_session_seconds}" }}',
        "}",
    ]


def config_hash(text: str) -> str:
    """Short content hash put on the pod template, so a config change rolls the pods."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render_fallback_config(spec: SpeechClusterSpec) -> str | None:
    """spec.model.fallback: the smaller model's config.pbtxt (the main one's batching, classes and
    instances under its own name, version and max batch); None without one."""
    small = fallback_spec(spec)
    return render_model_config(small) if small is not None else None


def model_configs(spec: SpeechClusterSpec) -> dict[str, str]:
    """ConfigMap key -> config.pbtxt of every model the worker loads."""
    configs = {names.MODEL_CONFIG_FILE: render_model_config(spec)}
    fallback = render_fallback_config(spec)
    if fallback is not None:
        configs[names.FALLBACK_CONFIG_FILE] = fallback
    return configs


def configs_hash(spec: SpeechClusterSpec) -> str:
    """config_hash over every model's config: a change to either rolls the pods."""
    configs = model_configs(spec)
    if len(configs) == 1:  # unchanged without a fallback, so no rollout on upgrade
        return config_hash(configs[names.MODEL_CONFIG_FILE])
    return config_hash("".join(f"{k}\n{v}" for k, v in sorted(configs.items())))


def render_configmap(owner: Owner, spec: SpeechClusterSpec, shard: ShardSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, spec, shard),
        "data": model_configs(spec),
    }
