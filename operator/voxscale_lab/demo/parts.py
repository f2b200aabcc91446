"""The live demo's real parts, each started and stopped in order: Prometheus, the chart, the operator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from voxscale import names
from voxscale.series import History
from voxscale_lab.devcluster import LocalCluster
from voxscale_lab.devcluster.prometheus import (
    PrometheusServer,
    Sample,
    backfill,
    free_port,
    openmetrics,
    run_prometheus,
)

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "voxscale"
RELEASE = "voxscale"
OPERATOR_NAMESPACE = "voxscale-system"
SCRAPE_SECONDS = 2
BACKFILL_STEP_SECONDS = 5.0
START_TIMEOUT_SECONDS = 90.0


def history_openmetrics(labels: dict[str, str], series: History, end: float) -> str:
    """Triton's success counter as it would have grown under `series` up to `end` (OpenMetrics)."""
    samples: list[Sample] = []
    total, t = 0.0, max(series.start, end - len(series) * series.step)
    while t < end:
        i = min(len(series) - 1, max(0, int((t - series.start) // series.step)))
        rate = float(series.values[i]) if series.values[i] == series.values[i] else 0.0
        samples.append(Sample("nv_inference_request_success", labels, total, t))
        total += rate * BACKFILL_STEP_SECONDS
        t += BACKFILL_STEP_SECONDS
    return openmetrics({"nv_inference_request_success": ("counter", samples)}).removesuffix("# EOF\n")


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


@dataclass
class OperatorProcess:
    """`voxscale run` as a local process with a kubeconfig; live once kopf's /healthz answers.

    `allowed`: its metrics-endpoint allow-list (empty: the default, in-cluster Services only).
    """

    kubeconfig: Path
    namespace: str
    log_path: Path
    metrics_port: int
    allowed: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        liveness = free_port()
        # `-X pycache_prefix=<work dir>` is harmless and puts the work dir in the command line,
        # so the teardown check (`pgrep -f <work dir>`) sees the operator like every other part.
        cmd = [sys.executable, "-X", f"pycache_prefix={self.log_path.parent / 'pycache'}",
               "-m", "voxscale.cli", "run", "--namespace", self.namespace,
               "--liveness-port", str(liveness), "--metrics-port", str(self.metrics_port),
               *(f"--allowed-metrics-endpoint={entry}" for entry in self.allowed)]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            # Own session: Ctrl-C reaches the demo, which stops the operator after the traffic.
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"voxscale run exited {self.process.returncode}; see {self.log_path}")
            try:
                if requests.get(f"http://127.0.0.1:{liveness}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"voxscale run not live within {START_TIMEOUT_SECONDS:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def metrics(self) -> str:
        try:
            return requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except requests.RequestException:
            return ""
