"""A real tritonserver (from the nvidia-pytriton wheel) serving the GPU-time stand-in model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from voxscale import names
from voxscale.metrics.promql import DEFAULT_TEMPLATES, quantile_label
from voxscale_lab.worker.loadgen import Target, chunk_audio, run_load
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, Worker, worker_spec
from voxscale_lab.worker.triton import INSTALL_HINT, find_dist, free_ports

pytestmark = pytest.mark.integration
MODEL = "asr-standin"


def require_worker_extra() -> None:
    """Fail (not skip) without the worker extra: CI installs it, so absence is a broken setup."""
    try:
        find_dist()
        import tritonclient.grpc.aio  # noqa: F401
    except (RuntimeError, ImportError) as e:
        pytest.fail(f"Triton integration tests need the worker extra: {INSTALL_HINT}\n({e})")


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    require_worker_extra()
    w = Worker(DEFAULT_MODEL_DIR, worker_spec(MODEL), free_ports(), load_seconds=0.5)
    try:
        seconds = w.start(ready_timeout=120)
        print(f"\n{MODEL}: start -> Ready in {seconds:.2f} s")
        yield w
    finally:
        w.stop()


def load(w: Worker, arrivals: list[float]) -> dict[str, object]:
    target = Target(w.grpc_url, MODEL, chunk_audio(1.0), client_timeout=60.0)
    return run_load(target, np.array(arrivals), show_progress=False)


def series(w: Worker) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every labelled sample on the worker's /metrics."""
    text = httpx.get(w.metrics_url).text
    return [
        (m.group(1), dict(re.findall(r'(\w+)="([^"]*)"', m.group(2))), float(m.group(3)))
        for m in re.finditer(r"^([a-zA-Z_:]+)\{([^}]*)\} (\S+)$", text, re.MULTILINE)
    ]


def metric(w: Worker, name: str) -> float:
    return sum(v for n, labels, v in series(w) if n == name and labels.get("model") == MODEL)


def test_the_served_model_runs_the_config_the_operator_rendered(worker: Worker) -> None:
    config = httpx.get(f"{worker.http_url}/v2/models/{MODEL}/config").json()
    batching = worker.spec.batching
    assert config["max_batch_size"] == batching.max_batch_size
    assert config["dynamic_batching"]["preferred_batch_size"] == batching.preferred_batch_sizes
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == batching.max_queue_delay_microseconds
    assert [g["kind"] for g in config["instance_group"]] == ["KIND_CPU"]
    # Inputs and outputs were left to the model's auto-complete, as the renderer intends.
    assert [(i["name"], i["data_type"], i["dims"]) for i in config["input"]] == [("AUDIO", "TYPE_FP32", [-1])]
    assert [o["name"] for o in config["output"]] == ["TEXT"]


def test_a_request_gets_a_standin_transcript_after_at_least_one_batch_time(worker: Worker) -> None:
    body = {"inputs": [{"name": "AUDIO", "shape": [1, 16000], "datatype": "FP32", "data": [0.0] * 16000}]}
    answer = httpx.post(f"{worker.http_url}/v2/models/{MODEL}/infer", json=body, timeout=30).json()
    text = answer["outputs"][0]["data"][0]
    assert "stand-in" in text and "1.00 s of audio" in text
    summary = load(worker, [0.0])["summary"]
    assert isinstance(summary, dict) and summary["ok"] == 1
    # The stand-in sleeps 50 ms + 6 ms for a batch of one: no answer can come sooner.
    assert summary["p50_ms"] >= 56.0


def test_concurrent_requests_are_batched_by_triton(worker: Worker) -> None:
    before = metric(worker, "nv_inference_count"), metric(worker, "nv_inference_exec_count")
    summary = load(worker, [0.0] * 24)["summary"]
    assert isinstance(summary, dict) and summary["ok"] == 24
    inferences = metric(worker, "nv_inference_count") - before[0]
    executions = metric(worker, "nv_inference_exec_count") - before[1]
    assert inferences == 24
    assert executions < inferences, f"24 requests at once ran as {executions} executions: no batching"


def _names_the_default_queries_read() -> set[str]:
    return {n for t in DEFAULT_TEMPLATES.values() for n in re.findall(r"\bnv_[a-z_]+", t)}


def test_every_metric_and_label_the_default_queries_read_is_exported(worker: Worker) -> None:
    load(worker, [0.0, 0.01, 0.02])
    wanted = _names_the_default_queries_read()
    assert wanted == {
        "nv_inference_request_success",
        "nv_inference_request_summary_us",
        "nv_inference_pending_request_count",
        "nv_inference_count",
        "nv_inference_exec_count",
    }
    found = series(worker)
    for name in sorted(wanted):
        labels = [lab for n, lab, _ in found if n == name]
        assert any(lab.get(names.PROM_LABEL_MODEL) == MODEL for lab in labels), f"{name} missing"
    quantiles = {lab.get("quantile") for n, lab, _ in found if n == "nv_inference_request_summary_us"}
    # Every SLO percentile the API accepts (p50, p90, p95, p99) has its own series.
    assert {quantile_label(q) for q in (0.5, 0.9, 0.95, 0.99)} <= quantiles


def test_the_loadgen_command_reports_and_writes_every_request(worker: Worker, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    argv = [sys.executable, "-m", "voxscale_lab.worker.loadgen", "--url", worker.grpc_url,
            "--rate", "20", "--duration", "2", "--no-progress", "--out", str(out)]  # fmt: skip
    printed = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.read_text())
    assert re.search(r"p95 [0-9.]+ ms", printed), printed
    assert result["summary"]["ok"] == result["summary"]["offered"] == len(result["records"]) > 0


def test_serve_is_ready_only_after_the_model_has_loaded() -> None:
    require_worker_extra()
    ports = free_ports()
    argv = [sys.executable, "-m", "voxscale_lab.worker.serve", "--load-seconds", "3",
            "--http-port", str(ports.http), "--grpc-port", str(ports.grpc),
            "--metrics-port", str(ports.metrics)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        print(line)
        match = re.search(r"start -> Ready in ([0-9.]+) s", line)
        assert match, f"no readiness line from serve: {line!r}"
        # initialize() sleeps 3 s; strict readiness must not report Ready before it returns.
        assert float(match.group(1)) >= 3.0
        assert httpx.get(f"http://127.0.0.1:{ports.http}/v2/health/ready").status_code == 200
    finally:
        proc.terminate()
        proc.wait(60)
