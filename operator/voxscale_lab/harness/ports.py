"""The free-port helpers for the parts a harness starts on loopback."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Protocol, TypeVar

ATTEMPTS = 3


def free_port() -> int:
    """A loopback port the kernel says is free right now (a part may still lose it to a race)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Part(Protocol):
    """A started process that can be stopped and says why in its log."""

    def stop(self) -> None: ...

    def log_tail(self) -> str: ...


P = TypeVar("P", bound=Part)


def start_on_free_port(
    start: Callable[[int], P],
    ready: Callable[[P], bool],
    *,
    name: str,
    port_taken: str,
    error: type[Exception] = RuntimeError,
    attempts: int = ATTEMPTS,
) -> P:
    """`start(port)` on a free port until `ready(part)`; the ready part.

    `free_port` only says the port was free when asked: another process (a parallel test, a
    worker the demo starts) can bind it before the part does. So a part that did not become
    ready is stopped, and tried again on a new port only when its log says the port was taken
    (`port_taken`, e.g. "address already in use"); any other failure raises `error` at once
    with the log, as does a port taken `attempts` times in a row.
    """
    part = None
    for _attempt in range(attempts):
        part = start(free_port())
        if ready(part):
            return part
        part.stop()
        if port_taken not in part.log_tail():
            raise error(f"{name} did not become ready:\n{part.log_tail()}")
    raise error(f"{name} found no free port:\n{part.log_tail() if part is not None else ''}")
