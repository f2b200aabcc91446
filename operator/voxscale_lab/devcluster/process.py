"""Start, watch and stop the control plane's processes, each in a process group of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voxscale_lab.devcluster.components import LOOPBACK


class ClusterError(RuntimeError):
    """The local cluster could not start or stop; the message names the log to read."""


@dataclass(frozen=True)
class Proc:
    """A started component: its name, pid (= its process-group id) and log file."""

    name: str
    pid: int
    log: Path


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports the kernel says are free right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((LOOPBACK, port)) == 0


def start(name: str, args: list[str], log: Path) -> Proc:
    """Run `args` detached in a new session, stdout+stderr to `log`; survives the caller's exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    return Proc(name, p.pid, log)


def alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        # Reap it if it is our zombie child, or it would look alive forever.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(what: str, check: Callable[[], bool], timeout: float, procs: list[Proc],
               interval: float = 0.25) -> None:
    """Poll `check` until true; fail early, with the log's tail, if one of `procs` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if not alive(p.pid):
                raise ClusterError(f"{p.name} exited while waiting for {what}; {p.log}:\n{tail(p.log)}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(interval)
    logs = "\n".join(f"--- {p.log}\n{tail(p.log, 5)}" for p in procs)
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(p: Proc, deadline: float) -> bool:
    # alive() first: it reaps our own zombie leader, which killpg(…, 0) would still count.
    while alive(p.pid) or _group_alive(p.pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def stop(procs: list[Proc], grace: float = 10.0) -> None:
    """SIGTERM every process group (reverse start order), SIGKILL whatever is left after `grace`."""
    for p in reversed(procs):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in reversed(procs):
        if not _wait_gone(p, deadline):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            _wait_gone(p, time.monotonic() + 5.0)


def leftovers(procs: list[Proc], ports: tuple[int, ...]) -> list[str]:
    """What is still running or listening after `stop`: empty when the teardown was clean."""
    left = [f"process group {p.pid} ({p.name})" for p in procs if _group_alive(p.pid)]
    return left + [f"port {port}" for port in ports if port_open(port)]
