"""Dashboard and alerts: every series they read is one the operator exports; rules load in promtool."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from tests.helpers import ROOT
from tests.test_chart import CLUSTER, EVERYTHING_ON, of_kind, render
from voxscale import telemetry

DASHBOARD = ROOT / "charts" / "voxscale" / "dashboards" / "voxscale.json"
RUNBOOK = ROOT / "docs" / "runbook.md"
METRIC = re.compile(r"\bvoxscale_[a-z0-9_]+")
# Alert name -> the series it must be built on (the issue's four alerts).
ALERTS = {
    "VoxscaleSLOBreach": {"voxscale_observed_latency_ms", "voxscale_slo_latency_ms"},
    "VoxscaleMetricsUnavailable": {"voxscale_metric_failures_total"},
    "VoxscaleFallbackActive": {"voxscale_mode"},
    "VoxscalePodsPendingOnCapacity": {"voxscale_pending_replicas"},
    "VoxscaleServingSmallerModel": {"voxscale_fallback_share"},
}


def exported_series() -> dict[str, tuple[str, ...]]:
    """Series name -> label names, for every metric in voxscale.telemetry, as Prometheus sees it."""
    out: dict[str, tuple[str, ...]] = {}
    for metric in vars(telemetry).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        name, labels = metric._name, tuple(metric._labelnames)
        if isinstance(metric, Counter):
            out[f"{name}_total"] = labels
        elif isinstance(metric, Histogram):
            out |= {f"{name}_{s}": labels for s in ("count", "sum")} | {f"{name}_bucket": (*labels, "le")}
        else:
            assert isinstance(metric, Gauge)
            out[name] = labels
    return out


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs


def rule_docs() -> list[dict[str, Any]]:
    (rule,) = of_kind(render(EVERYTHING_ON), "PrometheusRule")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def test_every_series_the_dashboard_reads_is_exported_by_the_operator() -> None:
    exported = exported_series()
    used = {m for e in dashboard_exprs() for m in METRIC.findall(e)}
    assert used and used <= exported.keys(), used - exported.keys()


def test_every_series_an_alert_reads_is_exported_by_the_operator() -> None:
    exported = exported_series()
    used = {m for r in rule_docs() for m in METRIC.findall(r["expr"])}
    assert used and used <= exported.keys(), used - exported.keys()


def test_the_dashboard_filters_only_on_labels_the_series_carry() -> None:
    exported = exported_series()
    for expr in dashboard_exprs():
        for metric, matchers in re.findall(r"(voxscale_[a-z0-9_]+)\{([^}]*)\}", expr):
            for label in re.findall(r"([a-z_]+)\s*=~?", matchers):
                assert label in exported[metric], f"{metric} has no label {label!r} ({expr})"


def test_the_dashboard_covers_the_per_shard_story() -> None:
    titles = {p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    for wanted in ("Demand vs forecast", "Latency vs SLO", "Replicas", "Decision term", "Metric failures"):
        assert any(t.startswith(wanted) for t in titles), wanted


@pytest.mark.parametrize(("alert", "series"), list(ALERTS.items()), ids=list(ALERTS))
def test_each_issue_alert_exists_on_its_series_and_has_a_runbook_entry(alert: str, series: set[str]) -> None:
    rule = next(r for r in rule_docs() if r.get("alert") == alert)
    assert set(METRIC.findall(rule["expr"])) == series
    assert rule["labels"]["severity"] in {"critical", "warning"}
    anchor = rule["annotations"]["runbook_url"].split("#")[1]
    assert f"## {alert}" in RUNBOOK.read_text() and anchor == alert.lower()


def test_the_rules_load_in_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is required: run `make system-deps` (Debian package prometheus)", pytrace=False)
    (rule,) = of_kind(render(EVERYTHING_ON), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in out.stdout


def test_the_dashboard_config_map_carries_the_sidecar_label_and_the_json() -> None:
    assert not [c for c in of_kind(render(CLUSTER), "ConfigMap")]
    (cm,) = of_kind(render(EVERYTHING_ON), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["voxscale.json"]) == json.loads(DASHBOARD.read_text())
