"""`voxscale worker serve`: the real tritonserver on a model repository, with the rendered config."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from voxscale import names
from voxscale.api import SpeechClusterSpec, parse_spec
from voxscale.render.configmap import render_model_config
from voxscale_lab.worker.triton import Ports, find_dist, prepare_backends, triton_command, triton_env

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[3] / "workers" / "models" / "asr-standin"
READY_POLL_SECONDS = 0.1


def worker_spec(
    model_name: str,
    base: SpeechClusterSpec | None = None,
    *,
    max_batch_size: int | None = None,
    max_queue_delay_us: int | None = None,
    streaming: dict[str, Any] | None = None,
) -> SpeechClusterSpec:
    """The spec the worker is rendered from: the manifest's (or defaults), on CPU, this model.

    The CPU build of Triton has no GPU instance kind, so `gpus` is forced to 0 (KIND_CPU);
    `max_batch_size=1` turns dynamic batching off in effect (no preferred sizes above 1).
    `streaming` (spec.streaming's fields, camelCase) is laid over the manifest's and turns the
    sequence batcher on.
    """
    raw: dict[str, Any] = (
        base.model_dump(by_alias=True, exclude_none=True)
        if base
        else {"shards": [{"name": "local", "region": "local", "languages": ["en"]}]}
    )
    raw["model"] = {**raw.get("model", {}), "name": model_name, "backend": "python"}
    raw["worker"] = {**raw.get("worker", {}), "gpus": 0}
    batching: dict[str, Any] = dict(raw.get("batching", {}))
    if max_batch_size is not None:
        batching["maxBatchSize"] = max_batch_size
        batching["preferredBatchSizes"] = [
            b for b in batching.get("preferredBatchSizes", [8, 16]) if b <= max_batch_size and b > 1
        ]
    if max_queue_delay_us is not None:
        batching["maxQueueDelayMicroseconds"] = max_queue_delay_us
    raw["batching"] = batching
    if streaming is not None:
        raw["streaming"] = {**raw.get("streaming", {}), **streaming}
    return parse_spec(raw)


def prepare_repository(
    model_dir: Path, spec: SpeechClusterSpec, workdir: Path, load_seconds: float | None
) -> tuple[SpeechClusterSpec, Path]:
    """Copy the model into `workdir/models` and write the rendered config.pbtxt next to it."""
    repository = workdir / "models"
    target = repository / spec.model.name
    shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns("__pycache__", "config.pbtxt"))
    spec = spec.model_copy(update={"model": spec.model.model_copy(update={"repository": str(repository)})})
    (target / names.MODEL_CONFIG_FILE).write_text(render_model_config(spec))
    profile = target / str(spec.model.version) / "profile.json"
    if load_seconds is not None and profile.exists():
        # The artificial model-load delay (emulating weights copied to a GPU) is per run.
        data = json.loads(profile.read_text())
        profile.write_text(json.dumps({**data, "load_seconds": load_seconds}, indent=2))
    return spec, repository


def add_fallback_model(
    repository: Path, spec: SpeechClusterSpec, model_dir: Path, profile: dict[str, Any] | None = None
) -> Path:
    """spec.model.fallback: `model_dir` copied into `repository` under the smaller model's name,
    with the operator's rendered config.pbtxt (render_fallback_config) and, for the stand-in,
    `profile` laid over its profile.json (e.g. a shorter batch time, a shared device_lock)."""
    from voxscale.render.configmap import render_fallback_config

    config = render_fallback_config(spec)
    if spec.model.fallback is None or config is None:
        raise ValueError("the spec declares no model.fallback")
    target = repository / spec.model.fallback.name
    shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns("__pycache__", "config.pbtxt"))
    (target / names.MODEL_CONFIG_FILE).write_text(config)
    if profile:
        set_profile(target / str(spec.model.fallback.version), profile)
    return target


def set_profile(version_dir: Path, values: dict[str, Any]) -> None:
    """Lay `values` over the stand-in's profile.json in `version_dir`."""
    path = version_dir / "profile.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**data, **values}, indent=2))


class Worker:
    """One tritonserver process; `start()` returns the measured start -> Ready seconds."""

    def __init__(
        self,
        model_dir: Path,
        spec: SpeechClusterSpec,
        ports: Ports,
        *,
        load_seconds: float | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.ports = ports
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="voxscale-worker-"))
        self.spec, self.repository = prepare_repository(model_dir, spec, self.workdir, load_seconds)
        self.log_path = self.workdir / "tritonserver.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.metrics}/metrics"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"

    def command(self) -> list[str]:
        dist = find_dist()
        backends = prepare_backends(dist, self.workdir)
        return triton_command(self.spec, dist, backends, self.ports, f"vxs{os.getpid()}p{self.ports.grpc}_")

    def start(self, ready_timeout: float = 600.0) -> float:
        argv = self.command()
        env = triton_env(find_dist(), dict(os.environ))
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            # A session of its own, so stop() reaches the Python-backend stubs too.
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return self._wait_ready(started, ready_timeout)

    def _wait_ready(self, started: float, timeout: float) -> float:
        assert self.process is not None
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() - started < timeout:
                if self.process.poll() is not None:
                    code = self.process.returncode
                    raise RuntimeError(f"tritonserver exited with {code}:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.http_url}/v2/health/ready").status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(READY_POLL_SECONDS)
        self.stop()
        raise TimeoutError(f"tritonserver not Ready within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Worker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser("serve", help="run tritonserver (from nvidia-pytriton) on a model directory")
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="a Triton model directory")
    p.add_argument("--manifest", type=Path, help="SpeechCluster YAML whose batching/queue settings to render")
    p.add_argument("--http-port", type=int, default=names.PORT_HTTP)
    p.add_argument("--grpc-port", type=int, default=names.PORT_GRPC)
    p.add_argument("--metrics-port", type=int, default=names.PORT_METRICS)
    p.add_argument("--max-batch-size", type=int, help="override; 1 = dynamic batching off")
    p.add_argument("--max-queue-delay-us", type=int, help="override the dynamic batcher's queue delay")
    p.add_argument("--load-seconds", type=float, help="stand-in only: artificial model-load delay (GPU load)")
    p.add_argument(
        "--streams-per-replica",
        type=int,
        help="streaming on (Triton's sequence batcher): spec.streaming.maxConcurrentSequencesPerReplica",
    )
    p.add_argument("--session-idle-timeout", type=int, help="with streaming: sessionIdleTimeoutSeconds")
    p.add_argument("--max-session-seconds", type=int, help="with streaming: maxSessionSeconds")
    p.add_argument("--ready-timeout", type=float, default=600.0)
    p.set_defaults(handler=run)
    return p


def streaming_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """spec.streaming fields from the flags; None (the manifest's, or off) when none is given."""
    given = {
        "maxConcurrentSequencesPerReplica": args.streams_per_replica,
        "sessionIdleTimeoutSeconds": args.session_idle_timeout,
        "maxSessionSeconds": args.max_session_seconds,
    }
    options = {k: v for k, v in given.items() if v is not None}
    return options or None


def run(args: argparse.Namespace) -> int:
    base = None
    if args.manifest:
        from voxscale.manifest import load_manifest

        base = load_manifest(args.manifest).spec
    model_dir = Path(args.model_dir).resolve()
    spec = worker_spec(
        model_dir.name,
        base,
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
        streaming=streaming_options(args),
    )
    worker = Worker(
        model_dir,
        spec,
        Ports(args.http_port, args.grpc_port, args.metrics_port),
        load_seconds=args.load_seconds,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        seconds = worker.start(args.ready_timeout)
        print(
            f"{spec.model.name}: start -> Ready in {seconds:.2f} s; http {worker.http_url}, "
            f"grpc {worker.grpc_url}, metrics {worker.metrics_url}; log {worker.log_path}",
            flush=True,
        )
        assert worker.process is not None
        code = worker.process.wait()
        print(f"tritonserver exited with {code}:\n{worker.log_tail()}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        worker.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m voxscale_lab.worker.serve ...`: the same as `voxscale worker serve ...`."""
    parser = argparse.ArgumentParser(prog="voxscale worker")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    raise SystemExit(main())
