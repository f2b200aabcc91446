"""What the loop reports: the scale after an HPA lets go, and the Degraded reason in fallback."""

from __future__ import annotations

from tests.helpers import FakeMetrics
from tests.test_loop import _kube, _tick
from voxscale import names
from voxscale.loop import Loop


def test_the_first_scale_after_an_hpa_is_deleted_reads_as_scaled_up() -> None:
    kube = _kube(eu_en=2, eu_de_fr=2, us_en_es=2)
    kube.hpas = {"asr-eu-en": "legacy-hpa"}
    loop = Loop(kube)
    metrics = FakeMetrics({"eu-en": 140.0, "eu-de-fr": 20.0, "us-en-es": 20.0})
    held = _tick(loop, metrics)
    assert kube.replicas["asr-eu-en"] == 2
    assert next(s for s in held.shards if s.name == "eu-en").scaler_state.last_replicas == 2
    kube.hpas = {}
    _tick(loop, metrics, now=held.shards[0].scaler_state.recommendations[-1].at + 20)
    assert kube.replicas["asr-eu-en"] > 2
    reasons = [reason for _, reason, _ in kube.events]
    assert names.REASON_SCALED_UP in reasons
    assert names.REASON_DRIFT_CORRECTED not in reasons


def test_in_fallback_the_degraded_condition_names_the_fallback_first() -> None:
    kube = _kube(eu_en=3, eu_de_fr=2, us_en_es=2)
    loop = Loop(kube)
    gone = FakeMetrics({"eu-en": None, "eu-de-fr": 20.0, "us-en-es": 20.0})
    status = None
    for i in range(4):  # failure threshold 3: hold, hold, then the fallback ladder
        status = _tick(loop, gone, now=1_700_000_000.0 + 10 * i)
    assert status is not None
    degraded = next(c for c in status.conditions if c.type == names.CONDITION_DEGRADED)
    assert degraded.reason == names.REASON_FALLBACK
    assert degraded.message.startswith("eu-en: fallback-")
    assert kube.replicas["asr-eu-en"] == 3
