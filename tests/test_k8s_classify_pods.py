"""classify_pods, a pure function of pod JSON and `now`: what each kind of pod counts as, and which
Ready pods teach a created->Ready warm-up sample."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from voxscale.decide.types import PodCounts
from voxscale.pods import classify_pods

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
NOW = (T0 + timedelta(minutes=10)).timestamp()
NO_GPU = "0/8 nodes are available: 8 Insufficient nvidia.com/gpu."


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(*, ready: str | None = None, became: float | None = None, scheduled: str | None = "True",
        message: str | None = None, created: float | None = 0.0, restarts: int = 0,
        deleting: bool = False, phase: str = "Running") -> dict[str, Any]:
    """A worker pod created `created` s after T0; `became` is Ready's lastTransitionTime (s after T0)."""
    conditions: list[dict[str, Any]] = []
    if scheduled is not None:
        conditions.append({"type": "PodScheduled", "status": scheduled, "reason": "Unschedulable",
                           **({"message": message} if message else {})})
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready,
                           **({"lastTransitionTime": _at(became)} if became is not None else {})})
    metadata: dict[str, Any] = {"name": "asr-eu-en-7d9f-x"}
    if created is not None:
        metadata["creationTimestamp"] = _at(created)
    if deleting:
        metadata["deletionTimestamp"] = _at(500)
    return {"metadata": metadata, "status": {
        "phase": phase, "conditions": conditions,
        "containerStatuses": [{"name": "triton", "restartCount": restarts, "ready": ready == "True"}],
    }}


# (ready, warming, pending, terminating), warm-up samples, scheduler messages
SCENARIOS = [
    pytest.param(pod(ready="True", became=90), (1, 0, 0, 0), [(T0.timestamp() + 90, 90.0)], [],
                 id="ready-teaches-its-created-to-ready-seconds"),
    pytest.param(pod(ready="False", became=1, created=0), (0, 1, 0, 0), [], [],
                 id="scheduled-but-unready-is-warming"),
    pytest.param(pod(ready="False", became=1, created=-3600), (0, 1, 0, 0), [], [],
                 id="still-unready-an-hour-past-its-start-is-still-warming"),
    pytest.param(pod(scheduled=None, created=590), (0, 1, 0, 0), [], [],
                 id="not-yet-seen-by-the-scheduler-is-warming"),
    pytest.param(pod(scheduled="False", message=NO_GPU, ready="False"), (0, 0, 1, 0), [], [NO_GPU],
                 id="unschedulable-is-pending-with-the-schedulers-message"),
    pytest.param(pod(scheduled="False", ready="False"), (0, 0, 1, 0), [], [],
                 id="unschedulable-without-a-message-is-pending"),
    pytest.param(pod(ready="True", became=90, deleting=True), (0, 0, 0, 1), [], [],
                 id="terminating-even-while-still-ready-teaches-nothing"),
    pytest.param(pod(ready="True", became=540, restarts=2), (1, 0, 0, 0), [], [],
                 id="ready-again-after-a-restart-is-ready-but-540s-is-no-warm-up"),
    pytest.param(pod(ready="False", became=540, restarts=3), (0, 1, 0, 0), [], [],
                 id="unready-after-a-restart-is-warming"),
    pytest.param(pod(ready="True", became=90, phase="Failed"), (0, 0, 0, 0), [], [],
                 id="evicted-is-nothing-its-replacement-is-counted"),
    pytest.param(pod(ready="True", became=None), (1, 0, 0, 0), [], [],
                 id="ready-without-a-transition-time-teaches-nothing"),
    pytest.param(pod(ready="True", became=90, created=None), (1, 0, 0, 0), [], [],
                 id="ready-without-a-creation-time-teaches-nothing"),
    pytest.param(pod(ready="True", became=-5, created=0), (1, 0, 0, 0), [], [],
                 id="ready-before-created-clock-skew-teaches-nothing"),
    pytest.param(pod(ready="True", became=605), (1, 0, 0, 0), [], [],
                 id="ready-after-now-is-ready-but-taught-on-a-later-tick"),
]


@pytest.mark.parametrize(("one", "counts", "warmups", "reasons"), SCENARIOS)
def test_each_kind_of_pod_counts_once_and_only_startups_teach_warm_up(
    one: dict[str, Any], counts: tuple[int, int, int, int], warmups: list[tuple[float, float]],
    reasons: list[str],
) -> None:
    got, got_warmups, got_reasons = classify_pods([one], spec_replicas=4, now=NOW)
    assert got == PodCounts(4, *counts)
    assert got_warmups == warmups
    assert got_reasons == reasons


def test_an_unreadable_timestamp_counts_as_missing() -> None:
    broken = pod(ready="True", became=90)
    broken["metadata"]["creationTimestamp"] = "yesterday"
    assert classify_pods([broken], 1, NOW) == (PodCounts(1, ready=1), [], [])


def test_a_pod_with_no_status_yet_is_warming() -> None:
    assert classify_pods([{"metadata": {"name": "p"}}], 1, NOW) == (PodCounts(1, warming=1), [], [])


def test_a_shard_mid_scale_up_sums_its_pods_and_keeps_desired() -> None:
    pods = [pod(ready="True", became=60), pod(ready="True", became=80, created=10),
            pod(ready="False", became=500, created=500),
            pod(scheduled="False", message=NO_GPU), pod(scheduled="False", message=NO_GPU),
            pod(ready="True", became=30, deleting=True)]
    counts, warmups, reasons = classify_pods(pods, spec_replicas=5, now=NOW)
    assert counts == PodCounts(asked=5, ready=2, warming=1, pending=2, terminating=1)
    assert [seconds for _, seconds in warmups] == [60.0, 70.0]
    assert reasons == [NO_GPU, NO_GPU]

