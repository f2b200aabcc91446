"""`voxscale run` as a local subprocess: a bounded start (live once kopf's /healthz answers), a
bounded stop (SIGTERM, then SIGKILL), and its log kept for diagnostics.

One class for every user: e2e (cluster-wide or a namespace glob, a fresh port at each restart),
the demo (one namespace, a fixed metrics port its Prometheus scrapes, a session of its own) and
the chart's live RBAC test (running as the chart's ServiceAccount).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

import requests

from voxscale_lab.harness.ports import free_port
from voxscale_lab.harness.waiting import eventually

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class OperatorStartError(RuntimeError):
    """`voxscale run` exited or was not live in time; the message holds its log's tail."""


@dataclass
class OperatorProcess:
    """One `voxscale run` with `kubeconfig`, its output appended to `log_path`.

    `namespace`: a namespace or kopf glob, several, or "" / () for cluster-wide. `allowed`: its
    metrics-endpoint allow-list (empty: the default, in-cluster Services only; a test's
    Prometheus on a loopback port needs an entry). `metrics_port`: fixed, or None for a free one
    at each start. `pycache_prefix`: harmless, and it puts that path in the command line, so the
    demo's teardown check (`pgrep -f <work dir>`) sees the operator like every other part.
    `own_session`: a Ctrl-C in the terminal reaches the caller only, which stops it in order.
    """

    kubeconfig: Path
    namespace: str | tuple[str, ...]
    log_path: Path
    allowed: tuple[str, ...] = ()
    _: KW_ONLY
    metrics_port: int | None = None
    extra_args: tuple[str, ...] = ()
    start_timeout: float = START_TIMEOUT_SECONDS
    pycache_prefix: Path | None = None
    own_session: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)
    liveness_port: int = field(default=0, init=False)
    serving_metrics_port: int = field(default=0, init=False)

    def command(self) -> list[str]:
        """The command line of the next start (its ports as chosen for it)."""
        marker = ["-X", f"pycache_prefix={self.pycache_prefix}"] if self.pycache_prefix else []
        watched = [self.namespace] if isinstance(self.namespace, str) else list(self.namespace)
        return [sys.executable, *marker, "-m", "voxscale.cli", "run",
                *(arg for ns in watched if ns for arg in ("--namespace", ns)),
                *(f"--allowed-metrics-endpoint={entry}" for entry in self.allowed),
                "--liveness-port", str(self.liveness_port), "--metrics-port", str(self.serving_metrics_port),
                *self.extra_args]

    def start(self, timeout: float | None = None) -> None:
        """Spawn the operator and wait until kopf's liveness endpoint answers 200 (bounded)."""
        assert self.process is None or self.process.poll() is not None, "operator already running"
        self.liveness_port = free_port()
        self.serving_metrics_port = self.metrics_port if self.metrics_port is not None else free_port()
        cmd = self.command()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(cmd)}\n".encode())
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env,
                                            start_new_session=self.own_session)
        bound = self.start_timeout if timeout is None else timeout
        try:
            eventually("the operator's liveness endpoint", self._alive, timeout=bound)
        except AssertionError as e:
            self.stop()
            raise OperatorStartError(f"voxscale run did not become live: {e}; log {self.log_path}:\n"
                                     f"{self.log_tail()}") from None

    def _alive(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"voxscale run exited {self.process.returncode}")
        try:
            url = f"http://127.0.0.1:{self.liveness_port}/healthz"
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """SIGTERM (kopf stops its daemons), then SIGKILL after the bound; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int | None:
        """SIGKILL: no cleanup at all, as when a node dies under the operator."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def metrics(self) -> str:
        """Its /metrics text now; "" when it does not answer."""
        try:
            return requests.get(f"http://127.0.0.1:{self.serving_metrics_port}/metrics", timeout=2).text
        except requests.RequestException:
            return ""

    def log_tail(self, chars: int = 8000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def log_since(self, offset: int) -> str:
        return self.log_path.read_text(errors="replace")[offset:] if self.log_path.exists() else ""

    def log_size(self) -> int:
        return len(self.log_path.read_text(errors="replace")) if self.log_path.exists() else 0
