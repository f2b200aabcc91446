"""spec.model.fallback rendered: both configs in one ConfigMap and one Triton, a pod Ready on the main
model alone, and an HTTPRoute that splits the main model's infer path by weight."""

from __future__ import annotations

from typing import Any

from tests.helpers import example_doc, spec_with
from voxscale import names
from voxscale.api import SpeechClusterSpec
from voxscale.render import Owner
from voxscale.render.configmap import render_configmap, render_fallback_config
from voxscale.render.deployment import render_deployment
from voxscale.render.routes import plan_route, render_route

OWNER = Owner(name="asr", namespace="speech", uid="00000000-0000-0000-0000-000000000001")
SMALL = {"name": "asr-small", "maxBatchSize": 16, "requestsPerSecondPerReplica": 180}
HTTP = {"parentRefs": [{"name": "speech-gateway"}], "protocol": "http"}


def _with_fallback(**overrides: Any) -> SpeechClusterSpec:
    model = {**example_doc()["spec"]["model"], "fallback": SMALL}
    return spec_with(model=model, **overrides)


def _container(spec: SpeechClusterSpec) -> dict[str, Any]:
    deployment = render_deployment(OWNER, spec, spec.shards[0])
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_the_configmap_carries_the_smaller_models_config_beside_the_main_one() -> None:
    spec = _with_fallback()
    data = render_configmap(OWNER, spec, spec.shards[0])["data"]
    assert sorted(data) == [names.MODEL_CONFIG_FILE, names.FALLBACK_CONFIG_FILE]
    small = data[names.FALLBACK_CONFIG_FILE]
    assert small.startswith('name: "asr-small"\n')
    assert "max_batch_size: 16\n" in small
    assert "preferred_batch_size: [ 8, 16 ]" in small
    assert data[names.MODEL_CONFIG_FILE].startswith(f'name: "{spec.model.name}"\n')


def test_the_same_triton_loads_both_and_is_ready_on_the_main_model() -> None:
    spec = _with_fallback()
    c = _container(spec)
    assert f"--load-model={spec.model.name}" in c["args"]
    assert "--load-model=asr-small" in c["args"]
    assert "--exit-on-error=false" in c["args"]
    ready = f"/v2/models/{spec.model.name}/ready"
    assert c["startupProbe"]["httpGet"]["path"] == ready
    assert c["readinessProbe"]["httpGet"]["path"] == ready
    mounts = {m["mountPath"]: m.get("subPath") for m in c["volumeMounts"]}
    assert mounts[f"{spec.model.repository}/asr-small/config.pbtxt"] == names.FALLBACK_CONFIG_FILE


def test_without_a_fallback_the_worker_is_as_before() -> None:
    spec = spec_with()
    c = _container(spec)
    assert "--exit-on-error=true" in c["args"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert render_fallback_config(spec) is None


def test_a_changed_smaller_model_rolls_the_pods() -> None:
    def config_hash(spec: SpeechClusterSpec) -> str:
        meta = render_deployment(OWNER, spec, spec.shards[0])["spec"]["template"]["metadata"]
        return str(meta["annotations"][names.ANNOTATION_CONFIG_HASH])

    model = {**example_doc()["spec"]["model"], "fallback": {**SMALL, "maxBatchSize": 8}}
    assert config_hash(_with_fallback()) != config_hash(spec_with(model=model))
    assert config_hash(_with_fallback()) != config_hash(spec_with())


def test_the_http_route_splits_each_shards_infer_path_by_the_share() -> None:
    spec = _with_fallback(routing=HTTP)
    assert spec.routing is not None
    route = render_route(OWNER, spec, spec.routing, shares={"eu-en": 0.3})
    rules = {r["name"]: r for r in route["spec"]["rules"]}
    infer = rules["eu-en-infer"]
    main = f"/v2/models/{spec.model.name}/infer"
    assert all(m["path"] == {"type": "Exact", "value": main} for m in infer["matches"])
    assert [m["headers"] for m in infer["matches"]] == [m["headers"] for m in rules["eu-en"]["matches"]]
    keep, moved = infer["backendRefs"]
    assert (keep["weight"], moved["weight"]) == (70, 30)
    assert keep["name"] == moved["name"] == "asr-eu-en"
    assert moved["filters"] == [{"type": "URLRewrite", "urlRewrite": {
        "path": {"type": "ReplaceFullPath", "replaceFullPath": "/v2/models/asr-small/infer"}}}]
    # Every shard gets its infer rule (weight 0 without a share): an exact path outranks headers.
    others = [rules[f"{s.name}-infer"]["backendRefs"][1]["weight"] for s in spec.shards[1:]]
    assert others == [0] * (len(spec.shards) - 1)
    assert plan_route(OWNER, spec, spec.routing, shares={"eu-en": 0.3}).problems == ()


def test_a_grpc_route_cannot_carry_the_share() -> None:
    spec = _with_fallback(routing={**HTTP, "protocol": "grpc"})
    assert spec.routing is not None
    route = render_route(OWNER, spec, spec.routing, shares={"eu-en": 0.3})
    assert [r["name"] for r in route["spec"]["rules"]] == [s.name for s in spec.shards]
