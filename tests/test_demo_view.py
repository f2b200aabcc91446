"""The live demo's terminal view: live streams per shard and a line per active failover."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from voxscale import names
from voxscale.manifest import Manifest, load_manifest
from voxscale_lab.demo.live import shard_streams, streams_query
from voxscale_lab.demo.report import Sample
from voxscale_lab.demo.view import render_view

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "examples" / "demo-speechcluster.yaml"


def _manifest() -> Manifest:
    return load_manifest(MANIFEST)


def _sample(shard: str, streams: float | None, ready: int = 2) -> Sample:
    return Sample(12.0, shard, 30.0, 28.5, 31.0, 120.0, 140.0, ready, ready, 0, ready, "stable",
                  "reactive", "steady", streams)


def _text(m: Manifest, samples: list[Sample], failovers: list[dict[str, Any]] | None = None) -> str:
    console = Console(record=True, width=220, color_system=None)
    console.print(render_view(m, samples, 60.0, 600.0, failovers or []))
    return console.export_text()


def _row(text: str, shard: str) -> list[str]:
    line = next(line for line in text.splitlines() if f" {shard} " in line)
    return [cell.strip() for cell in line.replace("┃", "│").strip("│ ").split("│")]


def test_each_shard_row_shows_its_live_streams_and_a_shard_without_the_gauge_shows_a_dash() -> None:
    m = _manifest()
    shards = [s.name for s in m.spec.shards]
    text = _text(m, [_sample(shards[0], 37.0), _sample(shards[1], 0.0), _sample(shards[2], None)])
    header = _row(text, "shard")
    column = header.index("streams")
    assert [_row(text, s)[column] for s in shards] == ["37", "0", "-"]
    assert "failover" not in text


def test_an_active_failover_is_a_line_under_the_table_saying_where_its_languages_go() -> None:
    m = _manifest()
    failovers = [{"from": "eu-en", "to": "us-en-es", "languages": ["en"], "reason": "0 of 2 replicas Ready",
                  "since": "2026-12-07T16:50:04Z"}]
    text = _text(m, [_sample("eu-en", 3.0, ready=0)], failovers)
    assert "failover: eu-en → us-en-es for en since 16:50:04Z (0 of 2 replicas Ready)" in text


def test_a_failover_with_nowhere_to_go_and_one_going_home_are_said_as_such() -> None:
    m = _manifest()
    failovers = [
        {"from": "eu-de-fr", "languages": ["de", "fr"], "reason": "region marked down",
         "since": "2026-12-07T16:50:04Z"},
        {"from": "eu-en", "to": "us-en-es", "languages": ["en"], "since": "2026-12-07T16:49:00Z",
         "homeReadySince": "2026-12-07T16:51:00Z"},
    ]
    text = _text(m, [_sample("eu-en", None)], failovers)
    assert "failover impossible: eu-de-fr cannot serve de, fr and no other region does" in text
    assert "home serves again" in text


def test_live_streams_per_shard_come_from_prometheus_summed_by_shard() -> None:
    m = _manifest()
    query = streams_query(m)
    assert query.startswith(f"sum by ({names.PROM_LABEL_SHARD}) ({names.ACTIVE_STREAMS_METRIC}{{")
    assert f'{names.PROM_LABEL_NAMESPACE}="{m.namespace}"' in query
    answer = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {names.PROM_LABEL_SHARD: "eu-en"}, "value": [1.0, "12"]},
        {"metric": {names.PROM_LABEL_SHARD: "us-en-es"}, "value": [1.0, "0"]},
    ]}}
    assert shard_streams(answer) == {"eu-en": 12.0, "us-en-es": 0.0}
    assert shard_streams({"status": "error", "error": "bad query"}) == {}
