"""spec.classes: the API's rules, and Triton priority levels in the rendered config.pbtxt."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pydantic import ValidationError

from tests.helpers import ROOT, example_doc, spec_with
from voxscale.decide import Policy
from voxscale.manifest import load_manifest
from voxscale.render.configmap import render_model_config
from voxscale.render.crd import render_crd

GOLDEN = ROOT / "tests" / "golden" / "classes-config.pbtxt"
LIVE = {"name": "live", "kind": "Interactive", "priority": 1}
OFFLINE = {"name": "offline", "kind": "Batch", "priority": 2, "deadlineSeconds": 3600}
NIGHTLY = {"name": "nightly", "kind": "Batch", "priority": 3, "deadlineSeconds": 28_800}


def test_a_classes_spec_renders_the_golden_priority_levels() -> None:
    text = render_model_config(spec_with(classes=[LIVE, OFFLINE, NIGHTLY]))
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "run UPDATE_GOLDEN=1 pytest tests/test_render_classes.py and review"


def test_tritons_own_model_config_proto_reads_the_priority_levels() -> None:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    text = render_model_config(spec_with(classes=[LIVE, OFFLINE, NIGHTLY]))
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    batching = config.dynamic_batching
    assert (batching.priority_levels, batching.default_priority_level) == (3, 1)
    policies = batching.priority_queue_policy
    assert sorted(policies) == [1, 2, 3]
    assert policies[2].timeout_action == model_config_pb2.ModelQueuePolicy.DELAY
    assert policies[2].default_timeout_microseconds == 0 and policies[2].allow_timeout_override


@pytest.mark.parametrize(
    ("queue_timeout", "action", "micros"),
    [(0, "DELAY", 500_000), (250_000, "REJECT", 250_000)],
    ids=["slo-delays-late-requests", "queue-timeout-rejects-as-without-classes"],
)
def test_the_interactive_queue_times_out_at_the_slo_or_the_declared_queue_timeout(
    queue_timeout: int, action: str, micros: int
) -> None:
    batching = {**example_doc()["spec"]["batching"], "queueTimeoutMicroseconds": queue_timeout}
    text = render_model_config(spec_with(classes=[LIVE, OFFLINE], batching=batching,
                                         slo={"percentile": "p95", "latencyMs": 500}))
    interactive = text.split("key: 1\n", 1)[1].split("}", 1)[0]
    assert f"timeout_action: {action}" in interactive
    assert f"default_timeout_microseconds: {micros}" in interactive
    assert "default_queue_policy" not in text  # every level has its own


def test_without_classes_the_config_has_no_priority_levels_and_no_class_is_planned() -> None:
    spec = spec_with()
    assert spec.classes is None and spec.interactive_class is None
    assert "priority" not in render_model_config(spec)
    p = Policy.from_spec(spec, spec.shards[0].name)
    assert (p.interactive_class, p.batch_classes) == (None, ())


def test_policy_carries_the_batch_deadlines() -> None:
    spec = spec_with(classes=[LIVE, OFFLINE, NIGHTLY])
    p = Policy.from_spec(spec, spec.shards[0].name)
    assert p.interactive_class == "live"
    assert [(b.name, b.deadline_seconds) for b in p.batch_classes] == [("offline", 3600), ("nightly", 28_800)]


@pytest.mark.parametrize(
    ("classes", "extra", "words"),
    [
        ([LIVE, {**OFFLINE, "deadlineSeconds": None}], {}, "needs deadlineSeconds"),
        ([{**LIVE, "deadlineSeconds": 60}, OFFLINE], {}, "Interactive class has none"),
        ([LIVE, {**OFFLINE, "deadlineSeconds": 0}], {}, "greater than or equal to 1"),
        ([LIVE, {**OFFLINE, "name": "live"}], {}, "repeated: live"),
        ([LIVE, {**OFFLINE, "priority": 1}], {}, "priorities must be unique"),
        ([OFFLINE], {}, "exactly one Interactive"),
        ([LIVE, {**LIVE, "name": "chat", "priority": 2}], {}, "exactly one Interactive"),
        ([{**LIVE, "priority": 3}, OFFLINE], {}, "highest priority"),
        ([LIVE, OFFLINE], {"streaming": {"maxConcurrentSequencesPerReplica": 8,
                                         "sessionIdleTimeoutSeconds": 5}}, "sequence batcher"),
        ([LIVE, OFFLINE], {"prometheus": {"queries": {"rate": "sum(x{selector})"}}},
         "remove prometheus.queries"),
        ([], {}, "at least 1 item"),
    ],
    ids=["batch-without-deadline", "interactive-with-deadline", "zero-deadline", "duplicate-name",
         "duplicate-priority", "no-interactive", "two-interactive", "interactive-not-first",
         "with-streaming", "with-query-overrides", "empty"],
)
def test_an_inconsistent_classes_spec_is_rejected_naming_the_problem(
    classes: list[dict[str, Any]], extra: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValidationError, match=words):
        spec_with(classes=[{k: v for k, v in c.items() if v is not None} for c in classes], **extra)


def test_every_rule_the_model_checks_is_also_a_cel_rule_of_the_crd() -> None:
    spec = render_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = " ".join(v["rule"] for v in spec["x-kubernetes-validations"])
    for part in ("d.name == c.name", "d.priority == c.priority", "exists_one(c, c.kind == 'Interactive')",
                 "i.priority < c.priority", "!has(self.streaming)", "!has(self.prometheus.queries.rate)"):
        assert part in rules
    classes = spec["properties"]["classes"]
    assert classes["x-kubernetes-list-map-keys"] == ["name"]
    assert "has(self.deadlineSeconds)" in classes["items"]["x-kubernetes-validations"][0]["rule"]
    assert "default" not in classes  # absent stays absent: today's behaviour


def test_the_classes_example_is_valid_and_renders_three_priority_levels() -> None:
    spec = load_manifest(ROOT / "examples" / "classes-speechcluster.yaml").spec
    assert [c.name for c in spec.classes or []] == ["live", "offline", "archive"]
    assert "priority_levels: 3" in render_model_config(spec)
