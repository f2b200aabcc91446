"""The live demo's terminal view: one row per shard, read from SpeechCluster status and the load generator."""

from __future__ import annotations

from rich.table import Table

from voxscale.manifest import Manifest
from voxscale_lab.demo.report import Sample


def _num(x: float | None, fmt: str = ".1f") -> str:
    return "-" if x is None else format(x, fmt)


def _latency(x: float | None, slo: float) -> str:
    if x is None:
        return "-"
    colour = "green" if x <= slo else "red"
    return f"[{colour}]{x:.0f}[/]" if x != float("inf") else "[red]failed[/]"


def render_view(m: Manifest, samples: list[Sample], elapsed: float, duration: float) -> Table:
    """The latest sample of each shard as a table titled with the run's progress."""
    latest: dict[str, Sample] = {}
    for sample in samples:
        latest[sample.shard] = sample
    slo = m.spec.slo.latency_ms
    table = Table(title=f"voxscale demo — {elapsed / 60:.1f} / {duration / 60:.0f} min "
                        f"(compressed: a day every 10 min); SLO p95 ≤ {slo:g} ms")
    for col in ("shard", "offered", "rate", "forecast", "p95 op", "p95 meas", "desired", "ready",
                "warming", "mode", "term", "last reason"):
        table.add_column(col, overflow="fold", max_width=48 if col == "last reason" else None)
    for shard in m.spec.shards:
        s = latest.get(shard.name)
        if s is None:
            continue
        table.add_row(shard.name, _num(s.offered), _num(s.observed), _num(s.forecast),
                      _latency(s.latency_ms, slo), _latency(s.measured_p95_ms, slo), str(s.desired),
                      str(s.ready), str(s.warming), s.mode, s.term, s.reason)
    return table
