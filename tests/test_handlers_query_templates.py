"""A query template no schema can parse is an InvalidSpec condition, not a tick that fails forever."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.helpers import RecordingKube, example_doc
from voxscale import names
from voxscale.handlers import checked_spec, validated_spec


def _body(queries: dict[str, str]) -> dict[str, Any]:
    doc = copy.deepcopy(example_doc())
    doc["spec"].setdefault("prometheus", {})["queries"] = queries
    doc["metadata"].update({"uid": "u-1", "generation": 2})
    return doc


@pytest.mark.parametrize(
    ("queries", "words"),
    [
        ({"rate": "sum(rate(nv_inference_request_success[1m]))"}, "has no {selector} placeholder"),
        ({"queue": "sum(my_queue{selector}) + other_series"}, "reads other_series without {selector}"),
    ],
    ids=["no_selector", "bare_series"],
)
def test_a_template_reading_outside_the_selector_sets_ready_false_invalid_spec(
    queries: dict[str, str], words: str
) -> None:
    kube = RecordingKube()
    assert validated_spec(_body(queries), kube) is None
    [ready] = kube.statuses[0]["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", names.REASON_INVALID_SPEC)
    assert f"spec.prometheus.queries.{next(iter(queries))}" in ready["message"]
    assert words in ready["message"]
    assert [e[:2] for e in kube.events] == [("Warning", names.REASON_INVALID_SPEC)]


def test_a_template_through_the_selector_is_accepted() -> None:
    spec, problems = checked_spec(_body({"rate": "sum(rate(my_requests_total{selector}[{window}]))"}))
    assert spec is not None and problems == ""
