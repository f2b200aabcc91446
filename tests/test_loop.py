"""The control-loop tick, end to end over in-memory fakes of the Kubernetes and Prometheus seams."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import pytest

from tests.helpers import FakeMetrics, RecordingKube, spec_with
from voxscale import loop as loop_module
from voxscale import names
from voxscale.api import SpeechClusterSpec, SpeechClusterStatus
from voxscale.decide import decide
from voxscale.decide.types import Decision, Forecast
from voxscale.forecast import ForecastCache
from voxscale.loop import ClusterRef, Loop
from voxscale.series import History

NOW = 1_700_000_000.0


def _spec() -> SpeechClusterSpec:
    # Forecast off: these tests are about the loop's plumbing; decide/ and forecast/ test the maths.
    return spec_with(scaling={"intervalSeconds": 10, "maxReplicas": 40, "forecast": {"enabled": False}})


def _ref(status: dict[str, Any] | None = None) -> ClusterRef:
    body = {"metadata": {"name": "asr", "namespace": "speech", "uid": "u1"}, "status": status or {}}
    return ClusterRef("speech", "asr", "u1", 1, body)


def _tick(
    loop: Loop, metrics: FakeMetrics, now: float = NOW, ref: ClusterRef | None = None
) -> SpeechClusterStatus:
    return asyncio.run(loop.tick(ref or _ref(), _spec(), metrics, now))


def _kube(**replicas: int) -> RecordingKube:
    return RecordingKube(replicas={f"asr-{k.replace('_', '-')}": v for k, v in replicas.items()})


def test_load_above_capacity_scales_up_with_an_event_and_status() -> None:
    kube = _kube(eu_en=2, eu_de_fr=2, us_en_es=2)
    # 140 req/s at 14 req/s per replica (20 x 0.7) needs 10 replicas.
    status = _tick(Loop(kube), FakeMetrics({"eu-en": 140.0, "eu-de-fr": 20.0, "us-en-es": 20.0}))
    assert kube.replicas["asr-eu-en"] > 2
    assert [reason for _, reason, _ in kube.events] == [names.REASON_SCALED_UP] * len(kube.events) != []
    shard = next(s for s in status.shards if s.name == "eu-en")
    assert shard.replicas == kube.replicas["asr-eu-en"]
    assert shard.observed_rate == 140.0
    assert shard.reasons
    assert status.shard_count == 3


def test_missing_metrics_hold_and_say_so_in_conditions() -> None:
    kube = _kube(eu_en=6, eu_de_fr=2, us_en_es=2)
    status = _tick(Loop(kube), FakeMetrics({"eu-en": None, "eu-de-fr": 20.0, "us-en-es": 20.0}))
    assert kube.replicas["asr-eu-en"] == 6
    metrics = next(c for c in status.conditions if c.type == names.CONDITION_METRICS_AVAILABLE)
    assert metrics.status == "False"
    assert "eu-en" in metrics.message


def test_one_failing_shard_does_not_stall_the_others() -> None:
    kube = _kube(eu_en=2, eu_de_fr=2, us_en_es=2)
    kube.broken = {"eu-de-fr"}
    status = _tick(Loop(kube), FakeMetrics({"eu-en": 140.0, "eu-de-fr": 140.0, "us-en-es": 140.0}))
    assert kube.replicas["asr-eu-en"] > 2 and kube.replicas["asr-us-en-es"] > 2
    broken = next(s for s in status.shards if s.name == "eu-de-fr")
    assert broken.mode == "hold"
    assert "apiserver said 500" in broken.reasons[0]


def test_a_shard_targeted_by_an_hpa_is_left_alone_and_reported() -> None:
    kube = _kube(eu_en=2, eu_de_fr=2, us_en_es=2)
    kube.hpas = {"asr-eu-en": "legacy-hpa"}
    status = _tick(Loop(kube), FakeMetrics({"eu-en": 140.0, "eu-de-fr": 20.0, "us-en-es": 20.0}))
    assert kube.replicas["asr-eu-en"] == 2
    degraded = next(c for c in status.conditions if c.type == names.CONDITION_DEGRADED)
    assert degraded.status == "True" and degraded.reason == names.REASON_HPA_CONFLICT
    assert "legacy-hpa" in degraded.message


def test_a_problem_is_announced_by_one_warning_event_on_entry_not_every_tick() -> None:
    kube = _kube(eu_en=2, eu_de_fr=2, us_en_es=2)
    kube.hpas = {"asr-eu-en": "legacy-hpa"}
    loop, metrics = Loop(kube), FakeMetrics({"eu-en": 140.0, "eu-de-fr": 20.0, "us-en-es": 20.0})
    for k in range(3):
        _tick(loop, metrics, NOW + 10 * k)
    warnings = [(reason, msg) for type_, reason, msg in kube.events if type_ == "Warning"]
    assert [reason for reason, _ in warnings] == [names.REASON_HPA_CONFLICT]
    assert warnings[0][1].startswith("eu-en: HorizontalPodAutoscaler legacy-hpa")
    kube.hpas = {}  # the HPA is deleted; when it comes back it is announced again
    _tick(loop, metrics, NOW + 40)
    kube.hpas = {"asr-eu-en": "legacy-hpa"}
    _tick(loop, metrics, NOW + 50)
    assert [r for t, r, _ in kube.events if t == "Warning"] == [names.REASON_HPA_CONFLICT] * 2


def test_a_hand_scale_is_undone_on_the_next_tick_with_a_drift_event() -> None:
    kube = _kube(eu_en=3, eu_de_fr=2, us_en_es=2)
    loop = Loop(kube)
    metrics = FakeMetrics({"eu-en": 35.0, "eu-de-fr": 20.0, "us-en-es": 20.0})
    _tick(loop, metrics)
    settled = kube.replicas["asr-eu-en"]
    kube.replicas["asr-eu-en"] = 12  # kubectl scale --replicas=12
    _tick(loop, metrics, NOW + 10)
    assert kube.replicas["asr-eu-en"] == settled
    assert kube.events[-1][1] == names.REASON_DRIFT_CORRECTED


def test_a_restarted_operator_resumes_from_status_without_a_dip() -> None:
    kube = _kube(eu_en=20, eu_de_fr=2, us_en_es=2)
    first = Loop(kube)
    busy = FakeMetrics({"eu-en": 270.0, "eu-de-fr": 20.0, "us-en-es": 20.0})
    stored = _tick(first, busy).model_dump(by_alias=True, mode="json", exclude_none=True)
    # A new operator process: empty memory, the status written by the old one, quiet traffic.
    quiet = FakeMetrics({"eu-en": 10.0, "eu-de-fr": 20.0, "us-en-es": 20.0})
    _tick(Loop(kube), quiet, NOW + 10, _ref(stored))
    assert kube.replicas["asr-eu-en"] == 20


@pytest.mark.parametrize("stored", [None, {}], ids=["no-status", "empty-status"])
def test_a_restart_with_no_stored_state_holds_the_ready_count(stored: dict[str, Any] | None) -> None:
    kube = _kube(eu_en=20, eu_de_fr=2, us_en_es=2)
    quiet = FakeMetrics({"eu-en": 10.0, "eu-de-fr": 20.0, "us-en-es": 20.0})
    _tick(Loop(kube), quiet, NOW, _ref(stored))
    assert kube.replicas["asr-eu-en"] == 20


def test_under_an_hpa_the_remembered_state_is_the_live_count_and_the_decision_is_left_as_decided(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decisions: list[Decision] = []

    def recorded(*args: Any) -> Decision:
        decisions.append(decide(*args))
        return decisions[-1]

    monkeypatch.setattr(loop_module, "decide", recorded)
    kube = _kube(eu_en=2, eu_de_fr=2, us_en_es=2)
    kube.hpas = {"asr-eu-en": "legacy-hpa"}
    loop = Loop(kube)
    status = _tick(loop, FakeMetrics({"eu-en": 140.0, "eu-de-fr": 20.0, "us-en-es": 20.0}))
    decided = next(d for d in decisions if d.replicas > 2)  # eu-en: 140 req/s wants more than 2
    assert decided.state.last_replicas == decided.replicas  # what decide() returned, untouched
    assert loop.states[("u1", "eu-en")].last_replicas == 2  # what the loop keeps: nothing applied
    eu_en = next(s for s in status.shards if s.name == "eu-en")
    assert eu_en.scaler_state.last_replicas == 2 and eu_en.replicas == decided.replicas


class HorizonCache(ForecastCache):
    """A ForecastCache that records the horizon each forecast was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.horizons: list[float] = []

    def forecast(self, key: Hashable, history: History, horizon_seconds: float, now: float,
                 **settings: Any) -> Forecast | None:
        self.horizons.append(horizon_seconds)
        return super().forecast(key, history, horizon_seconds, now, **settings)


def test_the_forecast_is_asked_for_the_horizon_the_decision_plans_for() -> None:
    cheap = {"method": "seasonal-naive", "history": "2d", "refitEvery": "1h"}
    spec = spec_with(scaling={"intervalSeconds": 10, "maxReplicas": 40, "forecast": cheap})
    kube, cache = _kube(eu_en=2, eu_de_fr=2, us_en_es=2), HorizonCache()
    loop = Loop(kube, forecasts=cache)
    metrics = FakeMetrics({"eu-en": 140.0, "eu-de-fr": 20.0, "us-en-es": 20.0})
    status = asyncio.run(loop.tick(_ref(), spec, metrics, NOW))
    # 30 s declared warm-up (nothing learned yet) + the 10 s interval.
    assert cache.horizons == [40.0] * 3
    assert {s.horizon_seconds for s in status.shards} == {40.0}
