"""spec.model.fallback through the loop: the smaller model's series are read and added, the share
goes to status, a gauge, the SmallerModel condition and Events (Warning in, Normal out)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tests.helpers import FakeMetrics, RecordingKube, example_doc, spec_with
from voxscale import names, telemetry
from voxscale.api import SpeechClusterSpec, SpeechClusterStatus
from voxscale.decide.types import ShardMetrics
from voxscale.loop import ClusterRef, Loop
from voxscale.metrics.protocol import ShardSelector
from voxscale.readings import with_fallback

NOW = 1_700_000_000.0
MAIN: dict[str, float | None] = {"eu-en": 90.0, "eu-de-fr": 5.0, "us-en-es": 5.0}
IDLE = {"eu-en": 0.0, "eu-de-fr": 0.0, "us-en-es": 0.0}
"""The smaller model loaded on every shard and serving nothing."""
SMALL = {"name": "asr-small", "requestsPerSecondPerReplica": 60, "holdSeconds": 0, "stepDown": 1}


@dataclass
class TwoModels(FakeMetrics):
    """The main model's rate per shard, and the smaller model's (absent: not loaded)."""

    small: dict[str, float] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def observe(self, selector: ShardSelector, now: float) -> ShardMetrics:
        self.asked.append(selector.model)
        if selector.model != "asr-small":
            return super().observe(selector, now)
        rate = self.small.get(selector.shard)
        return ShardMetrics(at=now, rate=rate, errors=() if rate is not None else ("empty answer",))


def _spec() -> SpeechClusterSpec:
    # 20 req/s per replica at utilisation 1: 4 replicas (the max) hold 80 req/s.
    return spec_with(
        model={**example_doc()["spec"]["model"], "fallback": SMALL},
        capacity={"requestsPerSecondPerReplica": 20, "targetUtilization": 1.0},
        scaling={"intervalSeconds": 10, "maxReplicas": 4, "forecast": {"enabled": False}},
    )


def _tick(loop: Loop, metrics: FakeMetrics, now: float, status: dict[str, Any] | None = None,
          ) -> SpeechClusterStatus:
    body = {"metadata": {"name": "asr", "namespace": "speech", "uid": "u1"}, "status": status or {}}
    return asyncio.run(loop.tick(ClusterRef("speech", "asr", "u1", 1, body), _spec(), metrics, now))


def _condition(status: SpeechClusterStatus, type_: str) -> tuple[str, str]:
    [c] = [c for c in status.conditions if c.type == type_]
    return c.status, c.reason


def _kube() -> RecordingKube:
    return RecordingKube(replicas={"asr-eu-en": 4, "asr-eu-de-fr": 1, "asr-us-en-es": 1})


def test_overload_at_max_replicas_moves_a_share_and_says_so_everywhere() -> None:
    kube = _kube()
    # 90 req/s still on the main model + 10 on the smaller one: 100 on 80 of capacity,
    # (100 - 80) / (100 x (1 - 20/60)) = 30 %.
    metrics = TwoModels(MAIN, small={**IDLE, "eu-en": 10.0})
    status = _tick(Loop(kube), metrics, NOW)
    eu_en = next(s for s in status.shards if s.name == "eu-en")
    assert eu_en.observed_rate == 100.0
    assert eu_en.fallback_share == 0.3
    assert eu_en.scaler_state.fallback_share == 0.3
    assert [s.fallback_share for s in status.shards if s.name != "eu-en"] == [0.0, 0.0]
    assert _condition(status, names.CONDITION_SMALLER_MODEL) == ("True", names.REASON_SERVING_SMALLER_MODEL)
    warnings = [(t, r) for t, r, _ in kube.events if r == names.REASON_SERVING_SMALLER_MODEL]
    assert warnings == [("Warning", names.REASON_SERVING_SMALLER_MODEL)]
    assert telemetry.FALLBACK_SHARE.labels("speech", "asr", "eu-en")._value.get() == 0.3
    assert metrics.asked.count("asr-small") == 3


def test_the_share_returns_to_zero_after_the_hold_with_a_normal_event() -> None:
    kube = _kube()
    loop = Loop(kube)
    metrics = TwoModels(MAIN, small={**IDLE, "eu-en": 10.0})
    status = _tick(loop, metrics, NOW)
    calm = TwoModels({**MAIN, "eu-en": 40.0}, small=IDLE)
    stored = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    shares = []
    for i in (1, 2, 3):
        status = _tick(loop, calm, NOW + 10 * i, stored)
        stored = status.model_dump(by_alias=True, mode="json", exclude_none=True)
        shares.append(next(s.fallback_share for s in status.shards if s.name == "eu-en"))
    assert shares == [0.3, 0.3, 0.0]  # held for two ticks (the hold's floor), then back
    normal = [(t, r, m) for t, r, m in kube.events if r == names.REASON_MAIN_MODEL_ONLY]
    assert [(t, r) for t, r, _ in normal] == [("Normal", names.REASON_MAIN_MODEL_ONLY)]
    assert normal[0][2].startswith("eu-en: ")
    assert _condition(status, names.CONDITION_SMALLER_MODEL) == ("False", names.REASON_MAIN_MODEL_ONLY)


def test_a_smaller_model_that_is_not_loaded_is_a_condition_and_an_event_not_a_share() -> None:
    kube = _kube()
    metrics = TwoModels({"eu-en": 100.0, "eu-de-fr": 5.0, "us-en-es": 5.0}, small={})
    status = _tick(Loop(kube), metrics, NOW)
    assert {s.fallback_share for s in status.shards} == {0.0}
    assert _condition(status, names.CONDITION_SMALLER_MODEL) == (
        "False", names.REASON_FALLBACK_MODEL_UNAVAILABLE)
    unavailable = [(t, m) for t, r, m in kube.events if r == names.REASON_FALLBACK_MODEL_UNAVAILABLE]
    assert len(unavailable) == 3
    assert all(t == "Warning" and "asr-small is not loaded" in m for t, m in unavailable)


def test_without_a_fallback_model_there_is_no_condition_and_no_second_read() -> None:
    metrics = TwoModels({"eu-en": 100.0, "eu-de-fr": 5.0, "us-en-es": 5.0})
    spec = spec_with(scaling={"forecast": {"enabled": False}})
    body = {"metadata": {"name": "asr", "namespace": "speech", "uid": "u2"}, "status": {}}
    status = asyncio.run(Loop(_kube()).tick(ClusterRef("speech", "asr", "u2", 1, body), spec, metrics, NOW))
    assert all(c.type != names.CONDITION_SMALLER_MODEL for c in status.conditions)
    assert {s.fallback_share for s in status.shards} == {None}
    assert "asr-small" not in metrics.asked


def test_the_merged_reading_adds_the_rates_and_keeps_the_smaller_models_rate_and_batch_apart() -> None:
    # Calibration (decide/batching.py) pairs each model's batch with its own rate: the main
    # model's mean batch against both models' rate would read a faster main model.
    @dataclass
    class Small:
        def observe(self, selector: ShardSelector, now: float) -> ShardMetrics:
            assert selector.model == "asr-small"
            return ShardMetrics(at=now, rate=30.0, panic_rate=30.0, batch_efficiency=4.0, queue=2.0)

    main = ShardMetrics(at=NOW, rate=45.0, panic_rate=50.0, batch_efficiency=12.0, queue=5.0)
    selector = ShardSelector("speech", "asr", "eu-en", "asr-standin")
    merged, loaded = with_fallback(_spec(), Small(), selector, main, NOW)  # type: ignore[arg-type]
    assert loaded is True
    assert (merged.rate, merged.panic_rate, merged.queue) == (75.0, 80.0, 7.0)
    assert (merged.batch_efficiency, merged.fallback_rate, merged.fallback_batch) == (12.0, 30.0, 4.0)
