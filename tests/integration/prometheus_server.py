"""The integration tests' names for `voxscale_lab.harness.prometheus` (a real Prometheus, promtool
backfill); fixtures call `require_binary_for_test` first, so a missing binary fails the test.

    text = openmetrics({"my_counter": ("counter", [Sample("my_counter", {"a": "b"}, 1.0, t)])})
    backfill(text, data_dir)
    with run_prometheus(data_dir) as prom:
        requests.get(f"{prom.url}/api/v1/query", params={"query": "my_counter"})
"""

from __future__ import annotations

from voxscale_lab.harness.prometheus import (
    PrometheusServer,
    Sample,
    backfill,
    openmetrics,
    require_binary_for_test,
    run_prometheus,
)

__all__ = [
    "PrometheusServer", "Sample", "backfill", "openmetrics", "require_binary_for_test", "run_prometheus",
]
