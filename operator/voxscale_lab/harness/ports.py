"""The one free-port helper for the parts a harness starts on loopback."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port the kernel says is free right now (a part may still lose it to a race)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
