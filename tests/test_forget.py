"""Forgetting: a deleted SpeechCluster or a shard that left its spec leaves no state, forecast,
history or /metrics series behind in the operator process."""

from __future__ import annotations

import asyncio
import copy
import gc
import tracemalloc
from typing import Any

import kopf
from prometheus_client import REGISTRY, generate_latest

from tests.helpers import FakeMetrics, RecordingKube, example_doc, spec_with
from voxscale import handlers, telemetry
from voxscale.api import SpeechClusterSpec
from voxscale.forecast import ForecastCache
from voxscale.history import HistoryStore
from voxscale.loop import ClusterRef, Loop
from voxscale.metrics.endpoints import AllowList
from voxscale.series import History

NOW = 1_700_000_000.0
NAMESPACE = "forget"
CLUSTERS = 50
# Shard "a" is busy (140 req/s on 2 replicas: scaled up, a scale-event counter), shard "b" has no
# data (a metric-failure counter): between them every kind of series the operator exports.
TRAFFIC = FakeMetrics({"a": 140.0, "b": None})
SLACK_BYTES = 512 * 1024
"""Allowed growth of traced memory over 50 clusters' lives. What stays is the high-water mark
of dicts that held every cluster (a dict keeps its table after its keys are deleted; ~150 KiB
here) and interpreter noise; a second generation of 50 must add next to nothing. A leak of the
history alone (2 days at 1 minute, 23 KB a shard) would be 2.3 MB."""


def _spec(*shards: str) -> SpeechClusterSpec:
    # Seasonal-naive on 2 days: a real fitted path and history buffer per shard, at a fraction
    # of Holt-Winters' cost on 7 days.
    cheap = {"method": "seasonal-naive", "history": "2d", "refitEvery": "1h"}
    return spec_with(
        scaling={"intervalSeconds": 10, "maxReplicas": 40, "forecast": cheap},
        shards=[{"name": name, "region": "eu-west", "languages": ["en"]} for name in shards],
    )


def _ref(name: str) -> ClusterRef:
    body = {"metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}"}}
    return ClusterRef(NAMESPACE, name, f"uid-{name}", 1, body)


def _exported(cluster_prefix: str = "") -> tuple[int, int]:
    """(samples carrying one of our clusters' labels, all samples) on /metrics."""
    lines = [line for line in generate_latest(REGISTRY).decode().splitlines() if not line.startswith("#")]
    ours = [line for line in lines if f'namespace="{NAMESPACE}"' in line and
            f'cluster="{cluster_prefix}' in line]
    return len(ours), len(lines)


def _shard_series(cluster: str, shard: str) -> int:
    text = generate_latest(REGISTRY).decode()
    return sum(f'cluster="{cluster}"' in line and f'shard="{shard}"' in line for line in text.splitlines())


async def _live(loop: Loop, refs: list[ClusterRef], spec: SpeechClusterSpec, ticks: int = 2) -> None:
    for k in range(ticks):
        for ref in refs:
            await loop.tick(ref, spec, TRAFFIC, NOW + 10 * k)


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def _generation(loop: Loop, kube: RecordingKube, prefix: str, figures: dict[str, Any]) -> None:
    """50 clusters created, ticked twice and deleted; the figures while alive and after."""
    refs = [_ref(f"{prefix}{i:02d}") for i in range(CLUSTERS)]
    await _live(loop, refs, _spec("a", "b"))
    figures["held"] = (len(loop.states), len(loop.forecasts.keys()), len(loop.histories.keys()))
    # The fake's own records of every call are not the operator's memory.
    for record in (kube.statuses, kube.events, kube.calls, kube.scaled):
        record.clear()
    kube.replicas.clear()
    figures["memory"].append(_traced())
    figures["series"].append(_exported(prefix))
    for ref in refs:
        loop.forget(ref)
    figures["memory"].append(_traced())
    figures["series"].append(_exported(prefix))


async def _fifty_lives_twice() -> dict[str, Any]:
    kube = RecordingKube()
    loop = Loop(kube)
    # One life first, so imports, pydantic's and numpy's caches and the worker threads exist
    # before the baseline: what is measured is what the clusters themselves leave.
    await _live(loop, [_ref("warm-up")], _spec("a", "b"))
    loop.forget(_ref("warm-up"))
    tracemalloc.start()
    try:
        figures: dict[str, Any] = {"memory": [_traced()], "series": [_exported("c-")]}
        await _generation(loop, kube, "c-", figures)
        await _generation(loop, kube, "d-", figures)
    finally:
        tracemalloc.stop()
    figures["left"] = (len(loop.states), len(loop.problems), loop.forecasts.keys(), loop.histories.keys())
    return figures


def test_fifty_deleted_clusters_leave_memory_and_metrics_series_as_they_were() -> None:
    figures = asyncio.run(_fifty_lives_twice())
    base, live, after, live2, after2 = (m / 1024 for m in figures["memory"])
    series = figures["series"]
    print(f"\ntraced memory (KiB): baseline {base:.0f}; {CLUSTERS} clusters x 2 shards live {live:.0f}, "
          f"after forget {after:.0f}; a second {CLUSTERS} live {live2:.0f}, after forget {after2:.0f}")
    print(f"/metrics samples of those clusters / all samples: baseline {series[0][0]} / {series[0][1]}; "
          f"live {series[1][0]} / {series[1][1]}, after forget {series[2][0]} / {series[2][1]}; "
          f"second live {series[3][0]} / {series[3][1]}, after forget {series[4][0]} / {series[4][1]}")
    # Every shard holds state and history; only shard "a" has data to fit a forecast on.
    assert figures["held"] == (2 * CLUSTERS, CLUSTERS, 2 * CLUSTERS), "ticks built every cache"
    assert (live - base) * 1024 > 4 * SLACK_BYTES, "the clusters' state is big enough to see"
    assert (after - base) * 1024 < SLACK_BYTES
    assert (after2 - after) * 1024 < SLACK_BYTES / 8, "a second generation leaves nothing more"
    assert series[1][0] > 20 * 2 * CLUSTERS, "every shard exported its series"
    assert series[0][0] == series[2][0] == series[4][0] == 0
    assert series[0][1] == series[2][1] == series[4][1]
    assert figures["left"] == (0, 0, set(), set())


def test_a_shard_that_left_the_spec_is_forgotten_and_its_sibling_kept() -> None:
    loop, ref = Loop(RecordingKube()), _ref("shrinks")
    asyncio.run(_live(loop, [ref], _spec("a", "b")))
    kept = _shard_series("shrinks", "a")
    assert kept > 0 and _shard_series("shrinks", "b") > 0
    asyncio.run(loop.tick(ref, _spec("a"), TRAFFIC, NOW + 20))  # spec.shards lost "b"
    assert loop.shards(ref) == {"a"}
    assert set(loop.states) == set(loop.problems) == {(ref.uid, "a")}
    assert loop.forecasts.keys() == loop.histories.keys() == {(ref.uid, "a")}
    assert _shard_series("shrinks", "b") == 0
    assert _shard_series("shrinks", "a") == kept
    loop.forget(ref)


def _body(name: str, *shards: str) -> dict[str, Any]:
    doc = copy.deepcopy(example_doc())
    doc["metadata"] = {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}", "generation": 2}
    doc["spec"]["shards"] = [{"name": s, "region": "eu-west", "languages": ["en"]} for s in shards]
    return doc


def test_the_reconcile_handler_deletes_a_removed_shards_objects_and_forgets_it() -> None:
    kube = RecordingKube(existing_shards={"a", "b"})
    loop, ref = Loop(kube), _ref("edited")
    asyncio.run(_live(loop, [ref], _spec("a", "b")))
    memo = kopf.Memo(kube=kube, loop=loop, endpoints=AllowList.default())
    asyncio.run(handlers.reconcile(body=_body("edited", "a"), memo=memo))
    assert kube.existing_shards == {"a"}
    assert loop.shards(ref) == {"a"} and _shard_series("edited", "b") == 0
    loop.forget(ref)


def test_the_delete_handler_forgets_the_whole_cluster() -> None:
    loop, ref = Loop(RecordingKube()), _ref("deleted")
    asyncio.run(_live(loop, [ref], _spec("a", "b")))
    assert _exported("deleted")[0] > 0
    asyncio.run(handlers.forget_cluster(body=_body("deleted", "a", "b"), memo=kopf.Memo(loop=loop)))
    assert loop.shards(ref) == set() and loop.forecasts.keys() == set()
    assert _exported("deleted")[0] == 0  # the tick histogram too


def test_forgetting_one_cluster_leaves_another_of_the_same_namespace_alone() -> None:
    loop, gone, stays = Loop(RecordingKube()), _ref("gone"), _ref("stays")
    asyncio.run(_live(loop, [gone, stays], _spec("a", "b")))
    before = _exported("stays")[0]
    loop.forget(gone)
    assert loop.shards(stays) == {"a", "b"} and _exported("stays")[0] == before
    loop.forget(stays)


def test_telemetry_forget_counts_the_label_sets_it_removed() -> None:
    loop, ref = Loop(RecordingKube()), _ref("counted")
    asyncio.run(_live(loop, [ref], _spec("a")))
    # 7 terms + 4 modes + 11 gauges + the scale-event counter (140 req/s scaled the shard up).
    assert telemetry.forget(NAMESPACE, "counted", {"a"}) == 23
    assert telemetry.forget(NAMESPACE, "counted") == 1  # the cluster's tick histogram
    assert telemetry.forget(NAMESPACE, "counted") == 0


def test_every_labelled_voxscale_metric_is_one_forget_knows() -> None:
    exported = {family.name for family in REGISTRY.collect() if family.name.startswith("voxscale_")}
    known = {family.name for metric, _ in telemetry._SERIES for family in metric.collect()}
    assert exported == known


def test_the_caches_forget_one_key_and_keep_the_others() -> None:
    history = History.of(NOW - 2 * 86_400, 60.0, [10.0] * 2880)
    cache, store = ForecastCache(spread=0.0), HistoryStore()
    for key in (("u", "a"), ("u", "b")):
        cache.forecast(key, history, 40.0, NOW, seasonality_seconds=86_400, refit_every_seconds=3600,
                       quantile=0.95, method="seasonal-naive")
        store.buffer(key, span=172_800, step=60, refresh_every=3600)
    cache.forget(("u", "a"))
    store.forget(("u", "a"))
    store.forget(("u", "never"))  # unknown keys are fine
    assert cache.keys() == store.keys() == {("u", "b")}
