"""The checked-in CRD is exactly what the API models generate, and is a valid structural schema."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.helpers import ROOT
from voxscale.render.crd import render_crd

CRD_FILE = ROOT / "crds" / "speechcluster.yaml"


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "type" in node:
            out.append((path, node))
        for key, child in node.get("properties", {}).items():
            out += _walk(child, f"{path}.{key}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                out += _walk(node[key], f"{path}[{key}]")
    return out


def test_checked_in_crd_matches_what_the_models_generate() -> None:
    assert yaml.safe_load(CRD_FILE.read_text()) == render_crd(), (
        "crds/speechcluster.yaml drifted from api.py: run `make crd` and commit the result"
    )


def test_every_string_in_spec_and_status_is_bounded() -> None:
    unbounded = [
        path
        for path, node in _walk(_schema())
        if node["type"] == "string"
        and "maxLength" not in node
        and "enum" not in node
        and path not in (".apiVersion", ".kind")
    ]
    assert unbounded == []


def test_schema_is_structural_no_refs_or_unions() -> None:
    text = yaml.safe_dump(render_crd())
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "additionalProperties: false"):
        assert forbidden not in text


@pytest.mark.parametrize(
    ("where", "rule_part"),
    [
        ("scaling", "self.minReplicas <= self.maxReplicas"),
        ("shard", "self.minReplicas <= self.maxReplicas"),
        ("shard", "self.region == oldSelf.region"),
        ("spec", "exists_one"),
        ("spec", "size(self.shards) >= 1"),
        ("batching", "preferredBatchSizes.all"),
    ],
    ids=[
        "cluster-min-le-max",
        "shard-min-le-max",
        "region-immutable",
        "unique-shards",
        "at-least-one-shard",
        "preferred-batch-fits",
    ],
)
def test_cel_rule_is_declared(where: str, rule_part: str) -> None:
    spec = _schema()["properties"]["spec"]
    node = {
        "spec": spec,
        "scaling": spec["properties"]["scaling"],
        "shard": spec["properties"]["shards"]["items"],
        "batching": spec["properties"]["batching"],
    }[where]
    rules = [v["rule"] for v in node["x-kubernetes-validations"]]
    assert any(rule_part in r for r in rules), rules


def test_shards_merge_by_name_so_a_shard_keeps_its_identity() -> None:
    shards = _schema()["properties"]["spec"]["properties"]["shards"]
    assert shards["x-kubernetes-list-type"] == "map"
    assert shards["x-kubernetes-list-map-keys"] == ["name"]
    assert shards["minItems"] == 1


def test_nested_sections_default_to_empty_objects_so_their_defaults_apply() -> None:
    scaling = _schema()["properties"]["spec"]["properties"]["scaling"]
    assert scaling["default"] == {}
    assert scaling["properties"]["scaleUp"]["properties"]["maxPods"]["default"] == 4


def test_printer_columns_and_short_name() -> None:
    version = render_crd()["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Shards",
        "Desired",
        "Ready",
        "P95",
        "SLO",
        "Mode",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}
    assert render_crd()["spec"]["names"]["shortNames"] == ["spc"]


def test_streaming_has_no_default_so_an_absent_section_stays_off() -> None:
    # Every other optional section defaults to {} (its fields' defaults apply); a defaulted
    # streaming section would switch every SpeechCluster to the sequence batcher.
    streaming = _schema()["properties"]["spec"]["properties"]["streaming"]
    assert "default" not in streaming
    assert streaming["required"] == ["maxConcurrentSequencesPerReplica"]
    assert streaming["x-kubernetes-validations"][0]["rule"] == (
        "self.sessionIdleTimeoutSeconds <= self.maxSessionSeconds"
    )
