"""spec.model.fallback in the worker: the smaller model's config.pbtxt beside the main one, loaded by
the same Triton, and a pod that is Ready on the main model alone.

Triton with `--exit-on-error=true` exits when any model named by `--load-model` fails to load
(measured on the wheel's 2.51: "failed to load all models", exit 1), so a fallback model absent
from the repository would crash-loop every worker. With a fallback the server keeps running
instead (`--exit-on-error=false`), and since `/v2/health/ready` then answers 200 even with a model
that failed to load, the probes ask the main model itself (`/v2/models/<main>/ready`): a worker
is Ready exactly when the main model is, whatever became of the smaller one. Whether the smaller
one loaded is read from its metrics (Triton exports series for loaded models only) and said in
the FallbackModelUnavailable reason.
"""

from __future__ import annotations

from typing import Any

from voxscale import names
from voxscale.api import SpeechClusterSpec

HEALTH_READY_PATH = "/v2/health/ready"


def fallback_spec(spec: SpeechClusterSpec) -> SpeechClusterSpec | None:
    """The spec the smaller model's config.pbtxt is rendered from: the main one's batching,
    classes and instances, with the fallback's name, version and max batch size."""
    fb = spec.model.fallback
    if fb is None:
        return None
    max_batch = fb.max_batch_size or spec.batching.max_batch_size
    batching = spec.batching.model_copy(update={
        "max_batch_size": max_batch,
        "preferred_batch_sizes": [b for b in spec.batching.preferred_batch_sizes if b <= max_batch],
    })
    model = spec.model.model_copy(update={"name": fb.name, "version": fb.version, "fallback": None})
    return spec.model_copy(update={"model": model, "batching": batching})


def fallback_args(spec: SpeechClusterSpec) -> list[str]:
    """The extra tritonserver flag: load the smaller model too (none without one)."""
    fb = spec.model.fallback
    return [] if fb is None else [f"--load-model={fb.name}"]


def exit_on_error(spec: SpeechClusterSpec) -> str:
    """`--exit-on-error`: false with a fallback model, so its absence cannot crash-loop the worker."""
    return f"--exit-on-error={'false' if spec.model.fallback else 'true'}"


def ready_path(spec: SpeechClusterSpec) -> str:
    """What the startup and readiness probes ask: the main model's readiness with a fallback."""
    return f"/v2/models/{spec.model.name}/ready" if spec.model.fallback else HEALTH_READY_PATH


def fallback_mounts(spec: SpeechClusterSpec) -> list[dict[str, Any]]:
    """The ConfigMap's fallback key mounted as the smaller model's config.pbtxt."""
    fb = spec.model.fallback
    if fb is None:
        return []
    path = f"{spec.model.repository.rstrip('/')}/{fb.name}/{names.MODEL_CONFIG_FILE}"
    return [{"name": names.CONFIG_VOLUME, "mountPath": path, "subPath": names.FALLBACK_CONFIG_FILE,
             "readOnly": True}]
