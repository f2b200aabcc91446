"""`voxscale demo` (plan mode): the example's objects, and a decision timeline per shard over a real trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ROOT
from voxscale.api import ScalerState
from voxscale.cli import main
from voxscale.decide.types import Decision
from voxscale.manifest import load_manifest
from voxscale_lab.demo.plan import headline, replay_shard

TRACES = ROOT / "examples" / "traces"


def test_each_tick_of_the_replayed_shard_is_a_decision_within_the_shards_bounds() -> None:
    spec = load_manifest(ROOT / "examples" / "speechcluster.yaml").spec
    result = replay_shard(spec, "us-en-es", TRACES / "nyc_taxi.csv", hours=1)
    low, high = spec.bounds(spec.shard("us-en-es"))
    assert len(result.ticks) == 3600 // spec.scaling.interval_seconds
    assert all(low <= t.decision.replicas <= high for t in result.ticks)
    assert all(t.forecast is not None for t in result.ticks[1:])
    assert result.score.replica_hours > 0
    assert result.static_peak_replicas <= high


@pytest.mark.parametrize(
    ("term", "mode", "reasons", "expected"),
    [
        ("predictive", "stable", ("reactive: r", "predictive: p", "stabilize: s"), "predictive: p"),
        (
            "ceiling",
            "stable",
            ("predictive: p", "clamp: 21 lowered to max 20"),
            "clamp: 21 lowered to max 20",
        ),
        ("current", "stable", ("predictive: p", "stabilize: held at 30"), "stabilize: held at 30"),
        ("reactive", "panic", ("reactive: r", "panic: holding 8"), "panic: holding 8"),
    ],
    ids=["forecast-led", "bounded", "held", "panic"],
)
def test_the_timeline_explains_each_row_by_the_step_that_set_the_count(
    term: str, mode: str, reasons: tuple[str, ...], expected: str
) -> None:
    decision = Decision(
        replicas=1,
        mode=mode,
        term=term,
        reasons=reasons,  # type: ignore[arg-type]
        state=ScalerState(),
        horizon_seconds=40,
        learned_warmup_seconds=30,
    )
    assert headline(decision) == expected


def test_demo_prints_the_plan_and_a_summary_and_writes_a_plot_per_shard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "demo",
            str(ROOT / "examples" / "speechcluster.yaml"),
            "--traces",
            str(TRACES),
            "--hours",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Deployment/asr-eu-en" in out
    assert "SLO attainment" in out
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["eu-de-fr.png", "eu-en.png", "us-en-es.png"]
