"""PNG plots of replays: demand, Ready capacity and latency vs the SLO; cost-vs-violation curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from voxscale.series import FloatArray
from voxscale_lab.replay.pareto import Point, front
from voxscale_lab.replay.simulator import Run


def _per_minute(values: FloatArray) -> FloatArray:
    m = len(values) // 60
    return np.asarray(values[: m * 60].reshape(m, 60).mean(axis=1))


def plot_runs(runs: Sequence[Run], path: str | Path, *, capacity_rps: float, slo_ms: float,
              percentile: float) -> Path:
    """One row per policy: demand and Ready capacity (req/s) above, latency vs SLO below."""
    fig, axes = plt.subplots(len(runs), 2, figsize=(14, 2.4 * len(runs)), squeeze=False,
                             sharex=True)
    for row, run in zip(axes, runs, strict=True):
        hours = np.arange(run.seconds // 60) / 60.0
        row[0].plot(hours, _per_minute(run.arrivals), lw=0.6, color="0.4", label="demand")
        row[0].plot(hours, _per_minute(run.ready) * capacity_rps, lw=0.8, label="Ready capacity")
        row[0].set_ylabel(f"{run.policy}\nreq/s")
        lat = run.minute_latency_ms(percentile)
        row[1].semilogy(hours, np.clip(lat, 1, 1e6), lw=0.6, label=f"p{percentile * 100:g}")
        row[1].axhline(slo_ms, color="red", lw=0.8, ls="--", label="SLO")
        row[1].set_ylabel("latency ms")
    axes[0][0].legend(loc="upper left", fontsize=7)
    axes[0][1].legend(loc="upper left", fontsize=7)
    axes[-1][0].set_xlabel("hours")
    axes[-1][1].set_xlabel("hours")
    fig.suptitle(f"{runs[0].workload}, warm-up {runs[0].config.warmup_seconds:g} s")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_fronts(curves: Mapping[str, Mapping[str, Sequence[Point]]], path: str | Path) -> Path:
    """One panel per trace: each policy's violation minutes against its replica-hours ÷ oracle,
    one marker per setting of its knob (annotated), the Pareto front drawn through them."""
    traces = list(curves)
    cols = min(3, max(1, len(traces)))
    rows = (len(traces) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.2 * rows), squeeze=False)
    for ax, trace in zip(axes.flat, traces, strict=False):
        for policy, points in curves[trace].items():
            pts = sorted(points, key=lambda p: p.cost)
            line, = ax.plot([p.cost for p in pts], [p.violations for p in pts], marker="o",
                            lw=0.4, ms=3, label=policy)
            f = front(pts)
            ax.plot([p.cost for p in f], [p.violations for p in f], lw=1.4, color=line.get_color())
            for p in pts:
                ax.annotate(f"{p.setting:g}", (p.cost, p.violations), fontsize=6)
        ax.set_title(trace, fontsize=9)
        ax.set_xlabel("replica-hours ÷ oracle")
        ax.set_ylabel("SLO-violation minutes %")
        ax.set_yscale("symlog", linthresh=0.1)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(traces):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
