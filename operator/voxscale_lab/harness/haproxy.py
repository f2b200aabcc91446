"""A real local front door: Debian's HAProxy running the operator's route (see front_door), and
its workers changed at run time through HAProxy's runtime API, never by a reload.

A reload would start a new process with empty stick tables (sessions would fall back to the
hash and some would move); `add server` / `del server` on the admin socket change a backend in
place, so every session already stuck stays where it is. The config file is rewritten with
each change too, so a restart starts from the same workers.

A changed route (a new share for the smaller model, a rule gone) is new config, which the
runtime API cannot change: `set_route` reloads, seamlessly (the new process takes the listening
sockets over the admin socket, the old one finishes its requests in flight and exits).

    with run_front_door(route, {"eu-en": [Endpoint("w0", "127.0.0.1:8000")]}, workdir) as door:
        httpx.post(f"{door.url}/v2/models/m/infer", headers={"x-language": "en", ...}, ...)
        door.set_endpoints("eu-en", [...])      # add or remove workers; stuck sessions stay
        door.set_route(new_route)               # the route the operator applied now; a reload
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from voxscale_lab.harness.front_door import (
    Endpoint,
    Plan,
    backend_name,
    haproxy_config,
    plan,
    server_line,
)
from voxscale_lab.harness.ports import start_on_free_port

READY_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
DELETE_TIMEOUT_SECONDS = 30.0
"""A removed worker leaves once its connections have closed (`del server` refuses before)."""
INSTALL_HINT = "install it with `make system-deps` (Debian package `haproxy`, as root)"


class HAProxyError(RuntimeError):
    """HAProxy refused a config or a runtime command; the message carries its answer."""


def require_haproxy() -> str:
    """Path of the haproxy binary (Debian installs it in /usr/sbin, not always on PATH)."""
    path = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        raise HAProxyError(f"`haproxy` is not installed (the local front door is real): {INSTALL_HINT}")
    return path


def check_config(config_file: Path) -> str:
    """`haproxy -c -f`: HAProxy's own verdict on a config; HAProxyError with its output if invalid."""
    done = subprocess.run([require_haproxy(), "-c", "-f", str(config_file)],
                          capture_output=True, text=True, timeout=30, check=False)
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise HAProxyError(f"haproxy -c rejected {config_file}:\n{output}")
    return output


class FrontDoor:
    """One HAProxy process serving a route on a loopback port."""

    def __init__(self, route: Mapping[str, Any], endpoints: Mapping[str, Sequence[Endpoint]],
                 workdir: Path) -> None:
        self.plan: Plan = plan(route)
        self.endpoints = {rule: list(endpoints.get(rule, ())) for rule in self.plan.backends}
        self.workdir = workdir
        self.config_file = workdir / "haproxy.cfg"
        self.admin_socket = workdir / "haproxy.sock"
        self.log_path = workdir / "haproxy.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.retired: list[subprocess.Popen[bytes]] = []
        """Processes a reload replaced: each finishes its requests in flight, then exits."""
        self.reloads = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """host:port, as a gRPC client wants it."""
        return f"127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.config_file.write_text(haproxy_config(
            self.plan, self.endpoints, listen=self.address, admin_socket=str(self.admin_socket)))
        return self.config_file

    def start(self, port: int) -> None:
        """Validate the config with `haproxy -c`, then run HAProxy in the foreground (-db)."""
        self.port = port
        check_config(self.write_config())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [require_haproxy(), "-db", "-f", str(self.config_file)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
        """True once the admin socket answers (from this process: after a reload the old one's may
        still, for a moment) and the front port accepts; False if HAProxy exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process is not None and self.process.poll() is None:
            try:
                if f"Pid: {self.process.pid}" not in self.runtime("show info").splitlines():
                    raise ConnectionRefusedError("the admin socket is still the old process's")
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def runtime(self, command: str) -> str:
        """One command on the admin socket; its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.admin_socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace").strip()

    def _must(self, command: str, *, ok: str = "") -> str:
        """Run `command`; HAProxyError unless HAProxy answers exactly `ok` (most commands: nothing)."""
        answer = self.runtime(command)
        if answer != ok:
            raise HAProxyError(f"haproxy refused `{command}`: {answer}")
        return answer

    def servers(self, rule: str) -> list[str]:
        """The names of the servers the running HAProxy has in the rule's backend."""
        answer = self.runtime(f"show servers state {backend_name(rule)}")
        rows = [line.split() for line in answer.splitlines()[1:] if line and not line.startswith("#")]
        return [row[3] for row in rows if len(row) > 3]

    def set_endpoints(self, rule: str, endpoints: Sequence[Endpoint]) -> None:
        """Make the rule's backend serve exactly `endpoints`: new ones added, gone ones removed.

        Runtime API only: sessions stuck to a worker that stays are untouched. A removed worker
        stops taking requests at once (maintenance), its connections are shut, then it is deleted.
        """
        backend = backend_name(rule)
        old = {e.name: e for e in self.endpoints[rule]}
        new = {e.name: e for e in endpoints}
        for name in new.keys() - old.keys():
            args = server_line(new[name], h2=self.plan.h2).removeprefix("server ")
            self._must(f"add server {backend}/{args}", ok="New server registered.")
            self._must(f"enable server {backend}/{name}")
        for name in old.keys() - new.keys():
            self._must(f"set server {backend}/{name} state maint")
            self._must(f"shutdown sessions server {backend}/{name}")
            self._delete(backend, name)
        self.endpoints[rule] = list(endpoints)
        self.write_config()

    def set_route(self, route: Mapping[str, Any]) -> bool:
        """Serve `route` from now on (e.g. the one the operator just applied); False when it plans
        exactly as the running one (nothing to do), True after a reload. A rule keeps its
        workers; a new rule starts with none (set_endpoints gives it some)."""
        new = plan(route)
        if new == self.plan:
            return False
        self.plan = new
        self.endpoints = {rule: self.endpoints.get(rule, []) for rule in new.backends}
        self.reload()
        return True

    def reload(self) -> None:
        """HAProxy's seamless reload of the config file as written now: `haproxy -x <admin socket>`
        takes the listening sockets from the running process (no refused connection), `-sf <pid>`
        then tells that one to stop accepting and exit once its requests in flight are answered.
        Stick tables start empty in the new process (a session then follows the hash)."""
        check_config(self.write_config())
        old = self.process
        if old is None or old.poll() is not None:
            raise HAProxyError("reload: HAProxy is not running")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [require_haproxy(), "-db", "-f", str(self.config_file), "-x", str(self.admin_socket),
                 "-sf", str(old.pid)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.retired = [p for p in self.retired if p.poll() is None] + [old]
        if not self.wait_ready():
            raise HAProxyError(f"the reloaded HAProxy did not come up:\n{self.log_tail()}")
        self.reloads += 1

    def drain(self, rule: str, name: str) -> None:
        """The worker takes no new sessions; sessions stuck to it stay (a terminating pod's drain)."""
        self._must(f"set server {backend_name(rule)}/{name} state drain")

    def _delete(self, backend: str, name: str) -> None:
        deadline = time.monotonic() + DELETE_TIMEOUT_SECONDS
        while (answer := self.runtime(f"del server {backend}/{name}")) != "Server deleted.":
            if time.monotonic() > deadline:
                raise HAProxyError(f"haproxy kept {backend}/{name}: {answer}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (HAProxy's hard stop), then SIGKILL after a bound; the same for any process a
        reload replaced that is still finishing its requests."""
        for process in (*self.retired, self.process):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=STOP_TIMEOUT_SECONDS)


@contextmanager
def run_front_door(
    route: Mapping[str, Any], endpoints: Mapping[str, Sequence[Endpoint]], workdir: Path
) -> Iterator[FrontDoor]:
    """HAProxy serving `route` on a free loopback port, ready on entry, stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)

    def start(port: int) -> FrontDoor:
        door = FrontDoor(route, endpoints, workdir)
        door.start(port)
        return door

    door = start_on_free_port(start, FrontDoor.wait_ready, name="haproxy", port_taken="cannot bind",
                              error=HAProxyError)
    try:
        yield door
    finally:
        door.stop()
