"""Fixtures for integration tests: a real Prometheus holding a known Triton metrics history."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from triton_history import STEP, TritonHistory

from voxscale_lab.harness.prometheus import (
    PrometheusServer,
    backfill,
    require_binary_for_test,
    run_prometheus,
)


@pytest.fixture(scope="session")
def triton_history() -> TritonHistory:
    """Three hours of Triton series ending two minutes before the wall clock.

    The wall clock is read once, here, because Prometheus's head block is "now": backfilled
    blocks must be older than it. Tests then pass explicit times, never the clock.
    """
    end = math.floor(time.time() / STEP) * STEP - 120.0
    history = TritonHistory(start=0.0)
    history.start = end - (history.points - 1) * STEP
    return history


@pytest.fixture(scope="session")
def prometheus(
    triton_history: TritonHistory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    """A real Prometheus (Debian's binary) backfilled with `triton_history`; fails without it."""
    require_binary_for_test("prometheus")
    require_binary_for_test("promtool")
    data_dir: Path = tmp_path_factory.mktemp("prometheus") / "data"
    backfill(triton_history.to_openmetrics(), data_dir)
    with run_prometheus(data_dir) as server:
        yield server
