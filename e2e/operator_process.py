"""The operator under test in e2e scenarios: one per module, a fresh namespace per test, diagnostics.

`OperatorProcess` (`voxscale run` as a subprocess: bounded start/stop, log kept) is the lab
harness's, re-exported here. This module adds the per-test namespace the operator watches and
what a failing scenario prints: the operator's log tail and `kubectl get -o yaml` of what it manages.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from voxscale import names
from voxscale_lab.demo.parts import scrape_configs
from voxscale_lab.devcluster import Kubectl
from voxscale_lab.harness.manifests import example_speechcluster
from voxscale_lab.harness.operator_process import OperatorProcess
from voxscale_lab.harness.prometheus import PrometheusServer, require_binary_for_test, run_prometheus
from voxscale_lab.harness.waiting import eventually

# What a failing scenario prints, besides the operator's log.
DUMPED_KINDS = "speechclusters,deployments,pods,poddisruptionbudgets,horizontalpodautoscalers"


@contextmanager
def running_operator(kubectl: Kubectl, workdir: Path, tag: str,
                     allowed: Sequence[str]) -> Iterator[OperatorProcess]:
    """A cluster-wide operator for the duration of the block (one module's scenarios).

    Not `--namespace 'vxe-<tag>-*'`: with a glob kopf watches Namespaces and drops one the moment
    it is marked for deletion, before the namespace controller reports content remaining, so
    a SpeechCluster's finalizer in a deleted namespace is never released (seen here: the
    namespace stayed Terminating and the daemon kept ticking). Modules run one after another,
    and every namespace they use is emptied before the next starts.
    """
    op = OperatorProcess(kubectl.kubeconfig, "", workdir / f"operator-{tag}.log", tuple(allowed))
    op.start()
    try:
        yield op
    finally:
        op.stop()


@dataclass
class BridgedOperator:
    """What operator_on_bridged_workers runs: the Prometheus, its file_sd list, the operator."""

    prom: PrometheusServer
    sd_file: Path
    """The file_sd list the bridge writes its workers into."""
    op: OperatorProcess


@contextmanager
def operator_on_bridged_workers(
    kubectl: Kubectl, workdir: Path, tag: str, base: Path,
    extra_scrape_configs: Sequence[dict[str, Any]] = (),
) -> Iterator[BridgedOperator]:
    """A real Prometheus scraping the demo bridge's workers, and the operator reading it.

    The workers' job reads the file_sd list `base`/workers.json (empty until the bridge writes
    it), so pods the ReplicaSet controller creates are scraped as they come; the operator's own
    metrics are not scraped.
    """
    require_binary_for_test("prometheus")
    data_dir, sd_file = base / "data", base / "workers.json"
    data_dir.mkdir()
    sd_file.write_text("[]")
    workers = scrape_configs(sd_file, 0)[:1]
    with run_prometheus(data_dir, scrape_configs=[*workers, *extra_scrape_configs]) as prom, \
            running_operator(kubectl, workdir, tag, [prom.url]) as op:
        yield BridgedOperator(prom, sd_file, op)


def dump(kubectl: Kubectl, namespace: str) -> str:
    """`kubectl get -o yaml` of everything the operator manages in `namespace`, plus its Events."""
    objects = kubectl.run("get", DUMPED_KINDS, "-n", namespace, "-o", "yaml", check=False)
    events = kubectl.run("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False)
    return f"{objects.stdout}{objects.stderr}\n--- events\n{events.stdout}{events.stderr}"


def _report(request: pytest.FixtureRequest, text: str) -> None:
    """Write past pytest's capture, so the diagnostics show even though the report is done."""
    reporter: Any = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(text)
    else:
        sys.stderr.write(text + "\n")


def operator_namespace(kubectl: Kubectl, op: OperatorProcess, request: pytest.FixtureRequest,
                       tag: str) -> Iterator[str]:
    """A fresh namespace the operator watches; on failure prints diagnostics; removed after.

    SpeechClusters carry the operator's finalizer, so they are deleted while it still runs:
    a namespace holding one would otherwise never finish terminating.
    """
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))[:30].strip("-")
    name = f"vxe-{tag}-{stem}-{uuid.uuid4().hex[:4]}"
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    failed_before = request.session.testsfailed
    yield name
    if request.session.testsfailed > failed_before:
        _report(request, f"\n===== {request.node.name}: operator log tail ({op.log_path})\n"
                         f"{op.log_tail()}\n===== objects in {name}\n{dump(kubectl, name)}")
    _empty(kubectl, op, name)


def _empty(kubectl: Kubectl, op: OperatorProcess, name: str) -> None:
    if op.process is None or op.process.poll() is not None:
        op.start()  # a scenario that killed it: finalizers need an operator to be released
    kubectl.run("delete", "speechclusters", "--all", "-n", name, "--wait=false", check=False)
    kubectl.run("delete", "hpa,deployments,replicasets", "--all", "-n", name, "--wait=false",
                check=False)

    def pods_gone() -> bool:
        left = kubectl.json("get", "pods,speechclusters", "-n", name)["items"]
        if not left:
            return True
        kubectl.run("delete", "pods", "--all", "-n", name, "--grace-period=1", "--wait=false",
                    check=False)
        return False

    eventually(f"pods and SpeechClusters of {name} gone", pods_gone, timeout=60, interval=1.0)
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def speechcluster(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = kubectl.json("get", names.PLURAL, name, "-n", namespace)
    return obj


def shard_status(obj: dict[str, Any], shard: str) -> dict[str, Any] | None:
    for s in obj.get("status", {}).get("shards", []):
        if s.get("name") == shard:
            return dict(s)
    return None


def events(kubectl: Kubectl, namespace: str, reason: str | None = None, *,
           since: float | None = None) -> list[dict[str, Any]]:
    """The namespace's Events, of `reason` if given, (last) posted at or after `since` if given."""
    items: list[dict[str, Any]] = kubectl.json("get", "events", "-n", namespace)["items"]
    return [e for e in items if (reason is None or e.get("reason") == reason)
            and (since is None or _posted_since(e, since))]


def _posted_since(event: dict[str, Any], at: float) -> bool:
    """Whether the Event was (last) posted at or after `at` (the API stores whole seconds)."""
    stamp = event.get("lastTimestamp") or event.get("eventTime") or ""
    return bool(stamp) and datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() >= at - 1


def wait_seconds(seconds: float) -> None:
    """Let wall-clock time pass on purpose (a window must elapse); never used as an assertion."""
    time.sleep(seconds)


def e2e_spec(namespace: str, prometheus_url: str, *, shards: list[str] | None = None,
             scaling: dict[str, Any] | None = None) -> dict[str, Any]:
    """examples/speechcluster.yaml made fast for e2e: 2 s ticks, 6 s warm-up, 20 s stabilization,
    no forecast (the ramp scenario turns it on), reading the test's own Prometheus.

    `shards` keeps only the named shards of the example; `scaling` is merged into spec.scaling.
    """
    doc = example_speechcluster(namespace)
    spec = doc["spec"]
    spec["model"]["warmupSeconds"] = WARMUP_SECONDS
    # Pinned here, not read from the example: the scenarios' arithmetic is 20 × 0.7 = 14 rps.
    spec["capacity"] = {"requestsPerSecondPerReplica": 20, "targetUtilization": 0.7}
    spec["scaling"].update({
        "intervalSeconds": INTERVAL_SECONDS,
        "forecast": {"enabled": False},
        "reactive": {"stableWindowSeconds": 10},
        "scaleUp": {"periodSeconds": 4},
        "scaleDown": {"stabilizationSeconds": STABILIZATION_SECONDS, "drainSeconds": 1},
        "fallback": {"failureThreshold": 3, "replicas": 2},
    })
    for key, value in (scaling or {}).items():
        if isinstance(value, dict):
            spec["scaling"].setdefault(key, {}).update(value)
        else:
            spec["scaling"][key] = value
    if shards is not None:
        spec["shards"] = [s for s in spec["shards"] if s["name"] in shards]
    spec["prometheus"] = {"url": prometheus_url, "timeoutSeconds": 2}
    return doc


INTERVAL_SECONDS = 2
WARMUP_SECONDS = 6
STABILIZATION_SECONDS = 20
