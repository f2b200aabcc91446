"""A streaming worker's drain as rendered: grace period from the learned drain, and a preStop that
waits out the live streams (run here under /bin/sh against a stand-in of Triton's endpoints)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kubernetes_validate
import pytest

from tests.helpers import spec_with
from tests.test_render import KUBERNETES_VERSION, OWNER
from voxscale import names
from voxscale.api import SpeechClusterSpec
from voxscale.render import render_deployment
from voxscale.render.deployment import STREAM_DRAIN_SCRIPT

STREAMING = {"maxConcurrentSequencesPerReplica": 8, "sessionIdleTimeoutSeconds": 10,
             "maxSessionSeconds": 1800}


def _streaming() -> SpeechClusterSpec:
    return spec_with(streaming=STREAMING)  # the example's drainSeconds: 30


def _pod(spec: SpeechClusterSpec, drain: int | None = None) -> dict[str, Any]:
    deployment = render_deployment(OWNER, spec, spec.shards[0], drain_seconds=drain)
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _pre_stop(pod: dict[str, Any]) -> list[str]:
    command: list[str] = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    return command


@pytest.mark.parametrize(
    ("learned", "drain", "grace"),
    [(None, 30, 70), (240, 240, 280), (5, 30, 70), (9000, 1800, 1840)],
    ids=["not learned: drainSeconds", "learned 240 s", "below drainSeconds", "above maxSessionSeconds"],
)
def test_grace_is_the_pause_the_streams_drain_tritons_exit_timeout_and_a_margin(
    learned: int | None, drain: int, grace: int
) -> None:
    pod = _pod(_streaming(), learned)
    assert pod["terminationGracePeriodSeconds"] == grace  # 5 + drain + 30 + 5
    assert _pre_stop(pod)[:5] == ["/bin/sh", "-c", STREAM_DRAIN_SCRIPT, "pre-stop", "5"]
    assert _pre_stop(pod)[5:] == [str(drain), str(names.PORT_HTTP), str(names.PORT_METRICS)]


def test_without_streaming_the_pod_keeps_the_short_pause_and_ignores_a_learned_drain() -> None:
    plain = spec_with()
    pod = _pod(plain, 240)
    assert _pre_stop(pod) == ["sleep", "5"] and pod["terminationGracePeriodSeconds"] == 40


def test_a_streaming_deployment_is_valid_kubernetes() -> None:
    spec = _streaming()
    kubernetes_validate.validate(render_deployment(OWNER, spec, spec.shards[0], drain_seconds=240),
                                 KUBERNETES_VERSION, strict=True)


def test_the_script_reads_the_workers_own_gauge() -> None:
    assert f"/^{names.ACTIVE_STREAMS_METRIC}([{{]|$)/" in STREAM_DRAIN_SCRIPT


# ------------------------------------------------------------------ the preStop, run for real


class Worker:
    """Triton's /v2/health/ready and /metrics on one loopback port; `streams` is a function of
    the seconds since start (None = the worker exports no gauge)."""

    def __init__(self, ready: bool, streams: Callable[[float], float | None]) -> None:
        self.ready, self.streams, self.started = ready, streams, time.monotonic()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.http.server_address[1])

    def _body(self, path: str) -> tuple[int, bytes]:
        if path == "/v2/health/ready":
            return (200 if self.ready else 400), b""
        n = self.streams(time.monotonic() - self.started)
        lines = ["# TYPE nv_inference_count counter", 'nv_inference_count{model="m",version="1"} 12']
        if n is not None:
            lines += [f"# TYPE {names.ACTIVE_STREAMS_METRIC} gauge",
                      f'{names.ACTIVE_STREAMS_METRIC}{{model="m",version="1"}} {n:f}']
        return 200, ("\n".join(lines) + "\n").encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, body = worker._body(self.path)
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


@pytest.fixture
def worker() -> Iterator[Callable[..., Worker]]:
    made: list[Worker] = []

    def make(ready: bool, streams: Callable[[float], float | None]) -> Worker:
        made.append(Worker(ready, streams))
        return made[-1]

    yield make
    for w in made:
        w.http.shutdown()
        w.http.server_close()


DRAIN = 3
# name -> (Ready, live streams at t seconds, waits the whole drain)
SCRIPT_SCENARIOS: dict[str, tuple[bool, Callable[[float], float | None], bool]] = {
    "no live streams: stops at once": (True, lambda t: 0.0, False),
    "live streams: waits the whole drain": (True, lambda t: 3.0, True),
    "streams end after 1 s: stops then": (True, lambda t: 2.0 if t < 1.0 else 0.0, False),
    "no gauge: unknown counts as busy": (True, lambda t: None, True),
    "not Ready (model not loaded): no stream can be open": (False, lambda t: 5.0, False),
}


@pytest.mark.skipif(shutil.which("curl") is None, reason="the preStop's HTTP client is curl")
@pytest.mark.parametrize("name", SCRIPT_SCENARIOS)
def test_the_pre_stop_waits_for_live_streams_at_most_the_drain(
    worker: Callable[..., Worker], name: str
) -> None:
    ready, streams, waits = SCRIPT_SCENARIOS[name]
    w = worker(ready, streams)
    started = time.monotonic()
    done = subprocess.run(["/bin/sh", "-c", STREAM_DRAIN_SCRIPT, "pre-stop", "0", str(DRAIN),
                           str(w.port), str(w.port)], timeout=DRAIN + 10, check=False)
    took = time.monotonic() - started
    assert done.returncode == 0
    # Coarse on purpose: "the whole drain" vs "well before it", not a timing measurement.
    assert (took >= DRAIN) if waits else (took < DRAIN - 0.5), took
