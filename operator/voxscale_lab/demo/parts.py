"""The live demo's real parts, each started and stopped in order: Prometheus, the chart, the operator."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from voxscale import names
from voxscale.series import History
from voxscale_lab.devcluster import LocalCluster
from voxscale_lab.harness import backfill as harness_backfill
from voxscale_lab.harness import operator_process
from voxscale_lab.harness.prometheus import PrometheusServer, backfill, run_prometheus

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "voxscale"
RELEASE = "voxscale"
OPERATOR_NAMESPACE = "voxscale-system"
SCRAPE_SECONDS = 2
BACKFILL_STEP_SECONDS = 5.0
START_TIMEOUT_SECONDS = 90.0


def history_openmetrics(labels: dict[str, str], series: History, end: float) -> str:
    """Triton's success counter as it would have grown under `series` up to `end` (OpenMetrics, no
    `# EOF`: shards are joined); each step holds its value, a missing one (NaN) counts as 0."""

    def rate(t: float) -> float:
        value = float(series.values[min(len(series) - 1, max(0, int((t - series.start) // series.step)))])
        return 0.0 if math.isnan(value) else value

    start = max(series.start, end - len(series) * series.step)
    text, _ = harness_backfill.history_openmetrics(labels, rate, start, end, BACKFILL_STEP_SECONDS,
                                                   rule="left", closed=False)
    return text.removesuffix("# EOF\n")


def backfill_history(data_dir: Path, namespace: str, cluster: str, model: str,  # noqa: PLR0917
                     series: dict[str, History], end: float) -> None:
    """Each shard's past traffic into Prometheus blocks before it starts (promtool)."""
    parts = []
    for i, (shard, history) in enumerate(series.items()):
        labels = {names.PROM_LABEL_NAMESPACE: namespace, names.PROM_LABEL_POD: f"{cluster}-{shard}-history",
                  names.PROM_LABEL_CLUSTER: cluster, names.PROM_LABEL_SHARD: shard,
                  names.PROM_LABEL_MODEL: model, "version": "1"}
        text = history_openmetrics(labels, history, end)
        # One `# TYPE` line for the family: later shards' samples follow the first's.
        parts.append(text if i == 0 else text.split("\n", 1)[1])
    backfill("".join(parts) + "# EOF\n", data_dir)


def scrape_configs(sd_file: Path, operator_metrics: int) -> list[dict[str, Any]]:
    every = f"{SCRAPE_SECONDS}s"
    return [
        {"job_name": "triton", "scrape_interval": every, "scrape_timeout": every,
         "file_sd_configs": [{"files": [str(sd_file)], "refresh_interval": "5s"}]},
        {"job_name": "voxscale-operator", "scrape_interval": every, "scrape_timeout": every,
         "static_configs": [{"targets": [f"127.0.0.1:{operator_metrics}"]}]},
    ]


@contextmanager
def prometheus(data_dir: Path, sd_file: Path, operator_metrics: int) -> Iterator[PrometheusServer]:
    with run_prometheus(data_dir, scrape_configs=scrape_configs(sd_file, operator_metrics)) as server:
        yield server


def install_chart(cluster: LocalCluster, watched: str, log: Path) -> Path:
    """`helm install` the chart in namespaced mode; returns a kubeconfig of its ServiceAccount.

    The chart's operator Deployment would only be a fake kwok pod here (the operator runs as a
    local process), so it is scaled to 0 after install: the chart has no replica-count value.
    """
    helm = str(cluster.bin_dir / "helm")
    args = [helm, "upgrade", "--install", RELEASE, str(CHART), "--kubeconfig", str(cluster.kubeconfig),
            "--namespace", OPERATOR_NAMESPACE, "--create-namespace", "--wait=false",
            "--set", "watch.mode=namespaced", "--set", f"watch.namespaces={{{watched}}}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"helm install failed:\n{done.stderr[-3000:]}")
    cluster.kubectl.run("scale", "deployment", RELEASE, "-n", OPERATOR_NAMESPACE, "--replicas=0")
    return cluster.kubeconfig_for_service_account(OPERATOR_NAMESPACE, RELEASE)


class OperatorProcess(operator_process.OperatorProcess):
    """The demo's `voxscale run`: one namespace, a fixed metrics port its Prometheus scrapes, a
    session of its own (Ctrl-C reaches the demo, which stops the operator after the traffic), the
    work dir in its command line for the teardown check, and 90 s to become live."""

    def __init__(self, kubeconfig: Path, namespace: str, log_path: Path, metrics_port: int,
                 allowed: tuple[str, ...] = ()) -> None:
        super().__init__(kubeconfig, namespace, log_path, allowed, metrics_port=metrics_port,
                         start_timeout=START_TIMEOUT_SECONDS, pycache_prefix=log_path.parent / "pycache",
                         own_session=True)
