"""The live demo's terminal view: one row per shard (SpeechCluster status, the load generator, the
workers' live streams), and a line per active regional failover (status.routing.failovers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def failover_lines(failovers: Sequence[dict[str, Any]]) -> list[str]:
    """One line per active failover (status.routing.failovers as the API returns them), e.g.
    `failover: eu-en → us-en-es for en since 12:00:04Z (0 of 2 replicas Ready)`."""
    lines = []
    for f in failovers:
        languages = ", ".join(f.get("languages") or [])
        reason = f" ({f['reason']})" if f.get("reason") else ""
        since = str(f.get("since", "?")).split("T")[-1]
        home = " — home serves again, returning after the hold" if f.get("homeReadySince") else ""
        if f.get("to"):
            lines.append(f"[yellow]failover: {f.get('from', '?')} → {f['to']} for {languages} "
                         f"since {since}{reason}{home}[/]")
        else:
            lines.append(f"[red]failover impossible: {f.get('from', '?')} cannot serve {languages} and "
                         f"no other region does, since {since}{reason}[/]")
    return lines


def render_view(m: Manifest, samples: list[Sample], elapsed: float, duration: float,
                failovers: Sequence[dict[str, Any]] = ()) -> Table:
    """The latest sample of each shard as a table titled with the run's progress; active
    failovers as its caption."""
    latest: dict[str, Sample] = {}
    for sample in samples:
        latest[sample.shard] = sample
    slo = m.spec.slo.latency_ms
    lines = failover_lines(failovers)
    table = Table(title=f"voxscale demo — {elapsed / 60:.1f} / {duration / 60:.0f} min "
                        f"(compressed: a day every 10 min); SLO p95 ≤ {slo:g} ms",
                  caption="\n".join(lines) or None, caption_justify="left")
    for col in ("shard", "offered", "rate", "forecast", "p95 op", "p95 meas", "desired", "ready",
                "warming", "streams", "mode", "term", "last reason"):
        table.add_column(col, overflow="fold", max_width=48 if col == "last reason" else None)
    for shard in m.spec.shards:
        s = latest.get(shard.name)
        if s is None:
            continue
        table.add_row(shard.name, _num(s.offered), _num(s.observed), _num(s.forecast),
                      _latency(s.latency_ms, slo), _latency(s.measured_p95_ms, slo), str(s.desired),
                      str(s.ready), str(s.warming), _num(s.streams, ".0f"), s.mode, s.term, s.reason)
    return table
