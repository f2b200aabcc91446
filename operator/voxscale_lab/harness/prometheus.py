"""A real local Prometheus (Debian's binary): backfill history with promtool, run the server, stop it.

Used by the integration and e2e tests and by `voxscale demo`; the e2e telemetry, which restarts
its server on the same port, calls `start` and `wait_ready` itself:

    text = openmetrics({"my_counter": ("counter", [Sample("my_counter", {"a": "b"}, 1.0, t)])})
    backfill(text, data_dir)
    with run_prometheus(data_dir) as prom:
        requests.get(f"{prom.url}/api/v1/query", params={"query": "my_counter"})
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from voxscale_lab.harness.ports import start_on_free_port

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


class MissingBinaryError(RuntimeError):
    """A part the caller needs is not installed; the message names the fix."""


def require_binary(name: str) -> str:
    """Path of `name`, or MissingBinaryError naming the fix (a missing part is a failure, not a skip)."""
    path = shutil.which(name)
    if path is None:
        raise MissingBinaryError(
            f"`{name}` is not on PATH: a real Prometheus is needed here. "
            "Install it with `make system-deps` (Debian package `prometheus`, as root)."
        )
    return path


def require_binary_for_test(name: str) -> str:
    """`require_binary` in a test: a missing binary fails it cleanly (no traceback), naming the fix.

    pytest is imported only then: the lab itself never needs it.
    """
    try:
        return require_binary(name)
    except MissingBinaryError as e:
        import pytest

        pytest.fail(f"the integration tests run a real Prometheus: {e}", pytrace=False)


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float
    timestamp: float
    """Unix seconds (OpenMetrics and promtool want seconds, not milliseconds)."""


def _label_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x))


def openmetrics(families: Mapping[str, tuple[str, Iterable[Sample]]]) -> str:
    """OpenMetrics text for promtool: one `# TYPE` per family, its samples together, `# EOF`.

    Within a family, each series' samples must be in increasing time order (promtool rejects
    out-of-order samples); callers write one series after another.
    """
    lines: list[str] = []
    for family, (kind, samples) in families.items():
        lines.append(f"# TYPE {family} {kind}")
        for s in samples:
            labels = ",".join(f'{k}="{_label_value(v)}"' for k, v in s.labels.items())
            lines.append(f"{s.name}{{{labels}}} {_number(s.value)} {s.timestamp:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def backfill(text: str, data_dir: Path) -> str:
    """Write TSDB blocks into `data_dir` with `promtool tsdb create-blocks-from openmetrics`.

    Run it before the server starts: blocks must be older than the head, and a fresh server's
    head is empty. Returns promtool's block table (for diagnostics).
    """
    promtool = require_binary("promtool")
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / f"{data_dir.name}.om"
    source.write_text(text)
    done = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


@dataclass
class PrometheusServer:
    url: str
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a bound; never leaves the process behind."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def config(scrape_configs: list[dict[str, Any]] | None, *, scrape_interval: str = "15s") -> dict[str, Any]:
    """prometheus.yml: `scrape_interval` is the global default (e2e scrapes every 1 s)."""
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": "15s"},
        "scrape_configs": scrape_configs or [],
    }


def start(data_dir: Path, config_file: Path, port: int, log_path: Path) -> PrometheusServer:
    """Spawn the server (not yet ready: see `wait_ready`)."""
    binary = require_binary("prometheus")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=30d",
                "--log.level=warn",
            ],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the terminal reaches the caller, which stops it in order.
            start_new_session=True,
        )
    return PrometheusServer(f"http://127.0.0.1:{port}", port, data_dir, log_path, process)


def wait_ready(server: PrometheusServer, timeout: float) -> bool:
    """Poll /-/ready (503 while the TSDB loads) until 200, the process dies, or the bound passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            if requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


@contextmanager
def run_prometheus(
    data_dir: Path,
    *,
    scrape_configs: list[dict[str, Any]] | None = None,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
) -> Iterator[PrometheusServer]:
    """A Prometheus on a free loopback port over `data_dir`, ready on entry, stopped on exit."""
    config_file = data_dir.parent / f"{data_dir.name}-prometheus.yml"
    config_file.write_text(yaml.safe_dump(config(scrape_configs)))
    log_path = data_dir.parent / f"{data_dir.name}-prometheus.log"
    server = start_on_free_port(
        lambda port: start(data_dir, config_file, port, log_path),
        lambda server: wait_ready(server, ready_timeout),
        name="prometheus", port_taken="address already in use",
    )
    try:
        yield server
    finally:
        server.stop()
