"""The SpeechCluster CustomResourceDefinition, generated from the pydantic models in api.py.

pydantic emits JSON Schema (draft 2020-12, with $refs and anyOf-null for optionals); the
apiserver wants a *structural* OpenAPI v3 schema: every node typed, no $ref, no anyOf at the
top of a property, defaults that survive pruning. This module does that translation, and adds
what Kubernetes needs beyond JSON Schema: list types, CEL rules, printer columns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from voxscale import names
from voxscale.api import SpeechClusterSpec, SpeechClusterStatus

# Bound on strings JSON Schema leaves open (date-times): CEL cost estimation needs a maxLength.
DATETIME_MAX_LENGTH = 64
# Shard objects are named <cluster>-<shard>; a shard name is <= 20, so the cluster name must be
# <= 42 for the pair (and the Service name derived from it) to stay a 63-character DNS label.
CLUSTER_NAME_MAX = 42

_DROP = {"title", "propertyNames", "examples"}
# Lists of scalars where order means nothing and duplicates are a mistake.
_SET_LISTS = {"zones", "languages", "preferredBatchSizes"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline $refs and flatten `anyOf: [X, null]` (Optional) into X."""
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if rest.get("default", 0) is None:
                del rest["default"]
            return _resolve({**options[0], **rest}, defs)
    return {k: _resolve(v, defs) for k, v in node.items() if k not in _DROP}


def _openapi(node: Any, field: str = "") -> Any:
    """Draft 2020-12 details -> OpenAPI v3.0 as the apiserver reads it."""
    if isinstance(node, list):
        return [_openapi(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi(v, k) if k != "properties" else v for k, v in node.items()}
    if "properties" in node:
        out["properties"] = {k: _openapi(v, k) for k, v in node["properties"].items()}
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[bound.replace("exclusiveM", "m")] = out[bound]
            out[bound] = True
    if out.get("additionalProperties") is False:
        # Structural schemas forbid it beside `properties`; unknown fields are rejected by
        # strict field validation (kubectl's default) and pruned otherwise.
        del out["additionalProperties"]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if out.get("type") == "string" and out.get("format") == "date-time":
        out.setdefault("maxLength", DATETIME_MAX_LENGTH)
    if out.get("type") == "array" and field in _SET_LISTS:
        out["x-kubernetes-list-type"] = "set"
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _object_defaults(node: Any) -> Any:
    """An optional nested object whose fields all have defaults gets `default: {}`.

    Kubernetes applies a property's default only when its parent object exists, so without
    this `scaling: {}`-style defaults would never reach e.g. scaling.scaleUp.maxPods.
    """
    if not isinstance(node, dict):
        return node
    props = node.get("properties")
    if isinstance(props, dict):
        required = set(node.get("required", []))
        for key, child in props.items():
            _object_defaults(child)
            if (
                key not in required
                and child.get("type") == "object"
                and "properties" in child
                and not child.get("required")
                and "default" not in child
            ):
                child["default"] = {}
    if isinstance(node.get("items"), dict):
        _object_defaults(node["items"])
    return node


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _openapi(_resolve(raw, defs))
    _object_defaults(schema)
    return schema


def _shard_list(spec_schema: dict[str, Any]) -> None:
    shards = spec_schema["properties"]["shards"]
    # A map keyed by name: server-side apply merges shards by name, and transition rules
    # (oldSelf) on an item compare a shard with its own previous version. The name is the
    # shard's identity: "renaming" one removes a shard (its objects are deleted) and adds
    # another, so there is no rename to forbid — the region, though, is immutable per name.
    shards["x-kubernetes-list-type"] = "map"
    shards["x-kubernetes-list-map-keys"] = ["name"]
    # Classes merge by name too: a duplicate name is refused by the API server itself.
    classes = spec_schema["properties"]["classes"]
    classes["x-kubernetes-list-type"] = "map"
    classes["x-kubernetes-list-map-keys"] = ["name"]


def _status_schema() -> dict[str, Any]:
    schema = model_schema(SpeechClusterStatus)
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


PRINTER_COLUMNS = [
    {"name": "Shards", "type": "integer", "jsonPath": ".status.shardCount"},
    {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {
        "name": "P95",
        "type": "number",
        "jsonPath": ".status.worstLatencyMs",
        "description": "Worst shard's latency at the SLO percentile, in ms",
    },
    {"name": "SLO", "type": "number", "jsonPath": ".spec.slo.latencyMs"},
    {"name": "Mode", "type": "string", "jsonPath": ".status.mode"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def render_crd() -> dict[str, Any]:
    spec_schema = model_schema(SpeechClusterSpec)
    _shard_list(spec_schema)
    root = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": _status_schema(),
        },
        "x-kubernetes-validations": [
            {
                "rule": f"size(self.metadata.name) <= {CLUSTER_NAME_MAX}",
                "message": f"metadata.name must be at most {CLUSTER_NAME_MAX} characters "
                "(per-shard objects are named <cluster>-<shard>, a 63-character DNS label)",
            }
        ],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": names.CRD_NAME},
        "spec": {
            "group": names.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": names.KIND,
                "listKind": f"{names.KIND}List",
                "plural": names.PLURAL,
                "singular": names.SINGULAR,
                "shortNames": [names.SHORT_NAME],
                "categories": ["all", "voxscale"],
            },
            "versions": [
                {
                    "name": names.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
