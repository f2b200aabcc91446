"""The tests' face of `voxscale_lab.devcluster.prometheus`: the same server, a missing binary fails the test.

Reusable by integration and e2e tests:

    text = openmetrics({"my_counter": ("counter", [Sample("my_counter", {"a": "b"}, 1.0, t)])})
    backfill(text, data_dir)
    with run_prometheus(data_dir) as prom:
        requests.get(f"{prom.url}/api/v1/query", params={"query": "my_counter"})
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from voxscale_lab.devcluster import prometheus as _prom
from voxscale_lab.devcluster.prometheus import (
    READY_TIMEOUT_SECONDS,
    STOP_TIMEOUT_SECONDS,
    MissingBinaryError,
    PrometheusServer,
    Sample,
    _config,
    _wait_ready,
    free_port,
    openmetrics,
)

__all__ = [
    "READY_TIMEOUT_SECONDS", "STOP_TIMEOUT_SECONDS", "PrometheusServer", "Sample", "_config", "_start",
    "_wait_ready", "backfill", "free_port", "openmetrics", "require_binary", "run_prometheus",
]


def require_binary(name: str) -> str:
    """Path of `name`, or a loud test failure naming the fix (a missing part is a failure, not a skip)."""
    try:
        return _prom.require_binary(name)
    except MissingBinaryError as e:
        pytest.fail(f"the integration tests run a real Prometheus: {e}", pytrace=False)


def backfill(text: str, data_dir: Path) -> str:
    require_binary("promtool")
    return _prom.backfill(text, data_dir)


def _start(data_dir: Path, config: Path, port: int, log_path: Path) -> PrometheusServer:
    require_binary("prometheus")
    return _prom._start(data_dir, config, port, log_path)


@contextmanager
def run_prometheus(
    data_dir: Path,
    *,
    scrape_configs: list[dict[str, Any]] | None = None,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
) -> Iterator[PrometheusServer]:
    require_binary("prometheus")
    with _prom.run_prometheus(data_dir, scrape_configs=scrape_configs, ready_timeout=ready_timeout) as s:
        yield s
