"""After an HPA lets go of a shard, voxscale's first scale is a scale-up, not a "drift" correction."""

from __future__ import annotations

from tests.test_loop import FakeMetrics, _kube, _tick
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
