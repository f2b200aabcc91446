"""spec.model.fallback's HTTPRoute on a real API server with the real Gateway API CRDs (experimental
channel): the weighted pair of backendRefs, one rewriting the main model's infer path to the smaller
model's, passes their schema and CEL rules, as rendered for a share of 0, 30 % and 100 %."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from e2e.helpers import example_speechcluster
from voxscale.api import parse_spec
from voxscale.render import Owner
from voxscale.render.routes import render_route
from voxscale_lab.devcluster import Kubectl


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_the_api_server_accepts_the_weighted_rewrite_of_the_infer_path(
    kubectl: Kubectl, gateway_api_crds: dict[str, Any], namespace: str, share: float,
) -> None:
    raw = copy.deepcopy(example_speechcluster(namespace)["spec"])
    raw["model"]["fallback"] = {"name": "asr-small", "requestsPerSecondPerReplica": 180, "maxShare": 1}
    raw["routing"] = {"parentRefs": [{"name": "speech-gateway"}], "protocol": "http"}
    spec = parse_spec(raw)
    assert spec.routing is not None
    owner = Owner(name="asr", namespace=namespace, uid="00000000-0000-0000-0000-000000000001")
    route = render_route(owner, spec, spec.routing, shares={spec.shards[0].name: share})
    route["metadata"].pop("ownerReferences")  # no SpeechCluster object behind it here
    kubectl.run("create", "--validate=strict", "-f", "-", stdin=yaml.safe_dump(route))
    stored = kubectl.json("get", "httproutes.gateway.networking.k8s.io", "asr", "-n", namespace)
    infer = next(r for r in stored["spec"]["rules"] if r["name"] == f"{spec.shards[0].name}-infer")
    assert [b["weight"] for b in infer["backendRefs"]] == [100 - round(100 * share), round(100 * share)]
    assert infer["backendRefs"][1]["filters"][0]["urlRewrite"]["path"]["replaceFullPath"] == (
        "/v2/models/asr-small/infer")
