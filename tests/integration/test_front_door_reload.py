"""A changed route reaches a running HAProxy by a seamless reload (marked `integration`).

The operator re-applies the HTTPRoute whenever the smaller model's share changes; the local front
door follows with `FrontDoor.set_route`: a new HAProxy takes the listening sockets from the old one
(`-x`), the old answers what it holds and exits (`-sf`). The backend here is a plain HTTP server
that answers each request with the path it received after a short pause, so requests are in flight
while the proxies change over; the rewrite is the route's, the answer says which path arrived.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_front_door import require_haproxy_for_test

from voxscale.api import parse_spec
from voxscale.render import Owner
from voxscale.render.routes import infer_path, render_route
from voxscale_lab.harness.front_door import Endpoint
from voxscale_lab.harness.haproxy import run_front_door

pytestmark = pytest.mark.integration

MODEL, SMALL = "asr-standin", "asr-small"
OWNER = Owner(name="asr", namespace="speech", uid="00000000-0000-0000-0000-000000000001")
PAUSE_SECONDS = 0.2


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(PAUSE_SECONDS)
        body = self.path.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(10)


def _route(share: float | None) -> dict[str, Any]:
    fallback = {"name": SMALL, "requestsPerSecondPerReplica": 100} if share is not None else None
    spec = parse_spec({
        "model": {"name": MODEL, "backend": "python", **({"fallback": fallback} if fallback else {})},
        "shards": [{"name": "en", "region": "local", "languages": ["en"]}],
        "routing": {"parentRefs": [{"name": "speech-gateway"}], "protocol": "http"},
    })
    assert spec.routing is not None
    return render_route(OWNER, spec, spec.routing, shares={"en": share or 0.0})


def _post(url: str) -> str:
    # A connection per request: a kept-alive one to the old process is closed by it after a reload.
    try:
        r = httpx.post(url, content=b"{}", headers={"x-language": "en", "connection": "close"}, timeout=10)
    except httpx.HTTPError as e:
        return f"error: {type(e).__name__}"
    return r.text if r.status_code == 200 else f"status {r.status_code}"


def test_a_new_share_in_the_route_is_served_after_a_seamless_reload_and_no_request_in_flight_fails(
    echo: str, tmp_path: Path,
) -> None:
    require_haproxy_for_test()
    with run_front_door(_route(0.0), {"en": [Endpoint("en-0", echo)]}, tmp_path) as door, \
            ThreadPoolExecutor(max_workers=16) as pool:
        url, first = f"{door.url}{infer_path(MODEL)}", door.process
        assert not door.set_route(_route(0.0))  # the same plan: nothing to reload
        before = Counter(pool.map(_post, [url] * 40))
        during = [pool.submit(_post, url) for _ in range(48)]
        time.sleep(PAUSE_SECONDS / 2)  # some of them are now inside the old process
        assert door.set_route(_route(1.0))
        in_flight = Counter(f.result() for f in during)
        after = Counter(pool.map(_post, [url] * 40))
        assert door.set_route(_route(None))  # the fallback removed: the infer rule is gone
        gone = Counter(pool.map(_post, [url] * 20))
        assert first is not None and first.wait(timeout=15) == 0  # the old one finished and left
        pids = (first.pid, door.process.pid if door.process else None)
    print(f"\nfront-door reload: before {dict(before)}; across the reload {dict(in_flight)}; after"
          f" {dict(after)}; rule removed {dict(gone)}; HAProxy pid {pids[0]} -> {pids[1]}")
    small, main = infer_path(SMALL), infer_path(MODEL)
    assert before == Counter({main: 40})
    assert set(in_flight) <= {main, small} and in_flight.total() == 48
    assert after == Counter({small: 40})
    assert gone == Counter({main: 20})
    assert pids[0] != pids[1]
