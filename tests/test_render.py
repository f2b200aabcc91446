"""Rendering is pure: the example renders to the golden manifests, and every object is valid Kubernetes."""

from __future__ import annotations

import os
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.helpers import ROOT, spec_with
from voxscale import names
from voxscale.api import SpeechClusterSpec
from voxscale.manifest import load_manifest
from voxscale.render import Owner, render_deployment, render_model_config, render_shard

GOLDEN = ROOT / "tests" / "golden"
KUBERNETES_VERSION = "1.32.0"
OWNER = Owner(name="asr", namespace="speech", uid="00000000-0000-0000-0000-000000000001")


def _example() -> SpeechClusterSpec:
    return load_manifest(ROOT / "examples" / "speechcluster.yaml").spec


def _container(spec: SpeechClusterSpec, shard: int = 0) -> dict[str, Any]:
    deployment = render_deployment(OWNER, spec, spec.shards[shard])
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize("shard", ["eu-en", "eu-de-fr", "us-en-es"])
def test_example_renders_to_the_golden_manifests(shard: str) -> None:
    spec = _example()
    rendered = yaml.safe_dump_all(render_shard(OWNER, spec, spec.shard(shard)), sort_keys=False)
    golden = GOLDEN / f"{shard}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered)
    assert rendered == golden.read_text(), "run UPDATE_GOLDEN=1 pytest tests/test_render.py and review"


def test_every_rendered_object_validates_against_the_kubernetes_schema() -> None:
    spec = _example()
    for shard in spec.shards:
        for obj in render_shard(OWNER, spec, shard):
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_deployment_never_carries_replicas_because_the_scaler_owns_them() -> None:
    spec = _example()
    assert "replicas" not in render_deployment(OWNER, spec, spec.shards[0])["spec"]


def test_worker_pods_land_on_their_region_and_spread_over_zones() -> None:
    spec = _example()
    pod = render_deployment(OWNER, spec, spec.shard("us-en-es"))["spec"]["template"]["spec"]
    assert pod["nodeSelector"][names.TOPOLOGY_REGION] == "us-east"
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == names.TOPOLOGY_ZONE
    zones = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert zones["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["us-east-a", "us-east-b"]


def test_shard_without_zones_gets_no_zone_affinity() -> None:
    spec = _example()
    pod = render_deployment(OWNER, spec, spec.shard("eu-de-fr"))["spec"]["template"]["spec"]
    assert "affinity" not in pod


def test_gpu_limit_equals_request_and_is_absent_for_cpu_workers() -> None:
    gpu = _container(_example())["resources"]
    assert gpu["limits"][names.GPU_RESOURCE] == gpu["requests"][names.GPU_RESOURCE] == "1"
    cpu = _container(spec_with(worker={"gpus": 0}))["resources"]
    assert names.GPU_RESOURCE not in cpu["limits"]


def test_triton_runs_in_exec_form_with_strict_readiness_and_metric_flags() -> None:
    container = _container(_example())
    assert container["command"] == ["tritonserver"]
    args = container["args"]
    assert "--model-control-mode=explicit" in args
    assert "--load-model=asr-standin" in args
    assert "--strict-readiness=true" in args
    for flag in names.TRITON_METRICS_CONFIG:
        assert f"--metrics-config={flag}" in args


def test_startup_probe_outlasts_a_slow_warmup() -> None:
    container = _container(spec_with(model={"name": "asr", "warmupSeconds": 120}))
    probe = container["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 3 * 120
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_grace_period_covers_the_drain() -> None:
    spec = spec_with(scaling={"scaleDown": {"drainSeconds": 90}})
    pod = render_deployment(OWNER, spec, spec.shards[0])["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 90
    assert "--exit-timeout-secs=90" in pod["containers"][0]["args"]


def test_pods_meet_the_restricted_pod_security_profile() -> None:
    spec = _example()
    pod = render_deployment(OWNER, spec, spec.shards[0])["spec"]["template"]["spec"]
    sc = pod["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False


def test_config_change_changes_the_pod_template_hash() -> None:
    a = render_deployment(OWNER, _example(), _example().shards[0])
    changed = spec_with(batching={"maxBatchSize": 64})
    b = render_deployment(OWNER, changed, changed.shards[0])
    key = names.ANNOTATION_CONFIG_HASH
    assert (
        a["spec"]["template"]["metadata"]["annotations"][key]
        != (b["spec"]["template"]["metadata"]["annotations"][key])
    )


@pytest.mark.parametrize(
    ("batching", "gpus", "expected", "absent"),
    [
        ({}, 1, ["max_batch_size: 32", "preferred_batch_size: [ 8, 16 ]", "kind: KIND_GPU"], []),
        (
            {"queueTimeoutMicroseconds": 0},
            1,
            ["max_queue_delay_microseconds: 5000"],
            ["default_queue_policy"],
        ),
        (
            {"queueTimeoutMicroseconds": 250000},
            1,
            ["timeout_action: REJECT", "default_timeout_microseconds: 250000"],
            [],
        ),
        ({"preferredBatchSizes": []}, 0, ["kind: KIND_CPU"], ["preferred_batch_size"]),
        ({"instanceCount": 2}, 1, ["count: 2"], []),
    ],
    ids=["defaults", "no-queue-timeout", "queue-timeout-rejects", "cpu-no-preferred", "two-instances"],
)
def test_model_config_carries_dynamic_batching_from_the_spec(
    batching: dict[str, Any], gpus: int, expected: list[str], absent: list[str]
) -> None:
    spec = spec_with(batching={**{"queueTimeoutMicroseconds": 0}, **batching}, worker={"gpus": gpus})
    text = render_model_config(spec)
    assert text.startswith('name: "asr-standin"\n')
    for line in expected:
        assert line in text
    for line in absent:
        assert line not in text


STREAMING = {
    "maxConcurrentSequencesPerReplica": 48,
    "sessionIdleTimeoutSeconds": 15,
    "maxSessionSeconds": 1800,
}


def test_a_streaming_spec_renders_the_golden_sequence_batcher_config() -> None:
    text = render_model_config(spec_with(streaming=STREAMING))
    golden = GOLDEN / "streaming-config.pbtxt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), "run UPDATE_GOLDEN=1 pytest tests/test_render.py and review"


def test_streaming_replaces_dynamic_batching_with_the_sequence_batcher() -> None:
    text = render_model_config(spec_with(streaming=STREAMING))
    # One scheduler per model: Triton refuses a config with both.
    assert "dynamic_batching" not in text and "sequence_batching {" in text
    assert "max_sequence_idle_microseconds: 15000000" in text
    assert "oldest {" in text and "max_candidate_sequences: 48" in text
    assert "preferred_batch_size: [ 8, 16 ]" in text and "max_queue_delay_microseconds: 5000" in text
    for name, kind in [
        (names.SEQUENCE_START_INPUT, "CONTROL_SEQUENCE_START"),
        (names.SEQUENCE_END_INPUT, "CONTROL_SEQUENCE_END"),
        (names.SEQUENCE_READY_INPUT, "CONTROL_SEQUENCE_READY"),
        (names.SEQUENCE_CORRID_INPUT, "CONTROL_SEQUENCE_CORRID"),
    ]:
        assert f'name: "{name}", control [ {{ kind: {kind},' in text
    assert f'key: "{names.MODEL_PARAM_MAX_SESSION_SECONDS}"' in text and 'string_value: "1800"' in text
    # The example's 2 s queue timeout is a dynamic-batcher policy: a live stream's chunk is
    # never rejected for waiting.
    assert "default_queue_policy" not in text


def test_turning_streaming_on_rolls_the_pods() -> None:
    plain, streaming = _example(), spec_with(streaming=STREAMING)
    key = names.ANNOTATION_CONFIG_HASH
    hashes = [
        render_deployment(OWNER, s, s.shards[0])["spec"]["template"]["metadata"]["annotations"][key]
        for s in (plain, streaming)
    ]
    assert hashes[0] != hashes[1]
