"""Stream-aware scale-in in the loop: deletion costs patched before the scale, said in the Event,
and the drain learned into status and rendered into the pods' grace period."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.helpers import FakeMetrics, RecordingKube, pod_json, spec_with
from voxscale import handlers, names
from voxscale.api import SpeechClusterSpec, SpeechClusterStatus
from voxscale.decide.victims import UNKNOWN_COST
from voxscale.loop import ClusterRef, Loop

NOW = 1_700_000_000.0
SHARD = "eu-en"
DEPLOYMENT = names.shard_resource_name("asr", SHARD)
COST = names.ANNOTATION_POD_DELETION_COST
STREAMS = {"w0": 5.0, "w1": 0.0, "w2": 9.0, "w3": 2.0, "w4": 0.0, "w5": 1.0}


def _spec(*, streaming: bool = True) -> SpeechClusterSpec:
    # No stabilization and no rate limit: 6 -> 2 in one tick, so the test is about what happens
    # around it. 32 slots: the 17 live streams need 1 replica (17 / (32 × 0.7)), below min 2.
    extra: dict[str, Any] = {"streaming": {"maxConcurrentSequencesPerReplica": 32}} if streaming else {}
    return spec_with(
        scaling={"intervalSeconds": 10, "minReplicas": 2, "maxReplicas": 40, "forecast": {"enabled": False},
                 "scaleDown": {"stabilizationSeconds": 0, "maxPercent": 100}},
        shards=[{"name": SHARD, "region": "eu-west", "languages": ["en"]}],
        **extra,
    )


def _kube(**annotations: dict[str, str]) -> RecordingKube:
    labels = names.selector_labels("asr", SHARD)
    pods = [pod_json(name, labels, annotations=annotations.get(name)) for name in STREAMS]
    pods.append(pod_json("w6", labels, terminating=True))  # already going: never patched
    pods.append(pod_json("other", names.selector_labels("asr", "us-en")))
    return RecordingKube(replicas={DEPLOYMENT: 6}, pods=pods)


def _ref(status: dict[str, Any] | None = None) -> ClusterRef:
    """The cluster as a running operator left it: 6 asked for a minute ago (a fresh one would
    hold what runs for a window first)."""
    state = {"lastReplicas": 6, "recommendations": [{"at": NOW - 60, "replicas": 6}]}
    running = {"shards": [{"name": SHARD, "scalerState": state}]}
    body = {"metadata": {"name": "asr", "namespace": "speech", "uid": "u1"}, "status": status or running}
    return ClusterRef("speech", "asr", "u1", 1, body)


def _tick(kube: RecordingKube, metrics: FakeMetrics, spec: SpeechClusterSpec | None = None,
          ref: ClusterRef | None = None) -> SpeechClusterStatus:
    return asyncio.run(Loop(kube).tick(ref or _ref(), spec or _spec(), metrics, NOW))


def _quiet(streams: dict[str, float] | None = None, **kwargs: Any) -> FakeMetrics:
    return FakeMetrics({SHARD: 5.0}, streams={SHARD: STREAMS if streams is None else streams}, **kwargs)


def test_scale_in_sets_each_pods_deletion_cost_to_its_streams_before_lowering_replicas() -> None:
    kube = _kube()
    _tick(kube, _quiet())
    assert kube.replicas[DEPLOYMENT] == 2
    assert dict((pod, patch["metadata"]["annotations"][COST]) for pod, patch in kube.patched) == {
        name: f"{streams:g}" for name, streams in STREAMS.items()
    }
    # Every cost is in place before the ReplicaSet controller is asked to remove pods.
    assert kube.calls.index("scale") > max(i for i, c in enumerate(kube.calls) if c == "patch_pod")


def test_the_scale_event_and_status_say_which_streams_the_removed_pods_hold() -> None:
    kube = _kube()
    status = _tick(kube, _quiet())
    (message,) = [m for _, reason, m in kube.events if reason == names.REASON_SCALED_DOWN]
    line = "scale-in 6 → 2: removing pods with 0, 0, 1, 2 live streams"
    assert message.startswith("6 -> 2 (") and message.endswith(line)
    assert status.shards[0].reasons[-1] == line


def test_pods_without_stream_data_count_as_busy_and_the_line_says_how_many() -> None:
    kube = _kube()
    _tick(kube, _quiet({"w0": 0.0, "w1": 3.0, "w2": 1.0, "w3": 2.0}))
    costs = {pod: patch["metadata"]["annotations"][COST] for pod, patch in kube.patched}
    assert costs["w4"] == costs["w5"] == str(UNKNOWN_COST)
    assert kube.events[-1][2].endswith(
        "removing pods with 0, 1, 2, 3 live streams (2 of 6 pods without stream data count as busy)"
    )


def test_an_unchanged_deletion_cost_is_not_patched_again() -> None:
    kube = _kube(w1={COST: "0"}, w2={COST: "9"})
    _tick(kube, _quiet())
    assert sorted(pod for pod, _ in kube.patched) == ["w0", "w3", "w4", "w5"]


def test_a_refused_patch_still_scales_in_and_says_kubernetes_picked_the_pods() -> None:
    kube = _kube()
    kube.patch_error = RuntimeError("HTTP 403 Forbidden: pods is forbidden")
    status = _tick(kube, _quiet())
    assert kube.replicas[DEPLOYMENT] == 2
    assert "deletion costs not set (RuntimeError: HTTP 403 Forbidden" in status.shards[0].reasons[-1]
    assert status.shards[0].reasons[-1].endswith("Kubernetes picks the pods")


def test_a_shard_without_streaming_scales_in_without_reading_or_patching_pods() -> None:
    kube = _kube()
    status = _tick(kube, _quiet(), _spec(streaming=False))
    assert kube.replicas[DEPLOYMENT] == 2
    assert "list_pods" not in kube.calls and not kube.patched
    assert status.shards[0].drain_seconds is None


def test_a_scale_up_patches_no_pod() -> None:
    kube = _kube()
    _tick(kube, FakeMetrics({SHARD: 400.0}, streams={SHARD: STREAMS}))
    assert kube.replicas[DEPLOYMENT] > 6 and not kube.patched


def test_the_drain_is_learned_into_status_and_kept_while_there_is_no_data() -> None:
    status = _tick(_kube(), _quiet(session_p99={SHARD: 212.0}))
    assert status.shards[0].drain_seconds == 240
    stored = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    again = _tick(_kube(), _quiet(), ref=_ref(stored))  # no session data this time
    assert again.shards[0].drain_seconds == 240


def test_the_learned_drain_becomes_the_worker_pods_grace_period() -> None:
    spec = _spec()
    body = {
        "metadata": {"name": "asr", "namespace": "speech", "uid": "u1"},
        "spec": spec.model_dump(by_alias=True, mode="json", exclude_none=True),
        "status": {"shards": [{"name": SHARD, "drainSeconds": 240}]},
    }
    kube = RecordingKube()
    handlers.reconcile_children(body, spec, kube)
    (deployment,) = [o for o in kube.applied if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    # 5 s off the endpoints + 240 s for the streams + 30 s Triton exit timeout + 5 s margin.
    assert pod["terminationGracePeriodSeconds"] == 280
    assert pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][5] == "240"


def test_live_streams_hold_the_replicas_their_slots_need_whatever_the_rate() -> None:
    # 17 live streams at 8 slots a replica: 17 / (8 × 0.7) = 3.04 → 4, although 5 req/s needs 1.
    spec = _spec().model_copy(update={"streaming": _spec().streaming.model_copy(  # type: ignore[union-attr]
        update={"max_concurrent_sequences_per_replica": 8})})
    kube = _kube()
    status = _tick(kube, _quiet(), spec=spec)
    assert kube.replicas[DEPLOYMENT] == 4
    assert "streams: 17 live / (8 slots × 0.7 headroom) per replica → 4" in status.shards[0].reasons
    assert "observed: streams need 4 > rate's 1" in status.shards[0].reasons


def test_without_stream_data_the_rate_alone_decides_and_nothing_is_invented() -> None:
    kube = _kube()
    status = _tick(kube, _quiet(streams={}))
    assert kube.replicas[DEPLOYMENT] == 2
    assert not [r for r in status.shards[0].reasons if r.startswith("streams:")]
