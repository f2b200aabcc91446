"""Which metrics endpoints the operator may call: an allow-list checked before any request is sent.

Whoever may create a SpeechCluster chooses `spec.prometheus.url`, and the operator then sends
requests from its own network position. The operator's admin therefore names the endpoints it
may reach (`voxscale run --allowed-metrics-endpoint`, Helm value `prometheus.allowedEndpoints`).

An entry is either
  * a host pattern, `prometheus.monitoring.svc`, `*.svc` or `*.svc:9090`: that host (or, with
    a leading `*.`, any host below that suffix), http or https, any port unless one is given; or
  * a URL prefix, `https://thanos.example.com/tenant-a`: that scheme, host and port (the
    scheme's default port when none is given), and a path equal to or below the prefix's.

URLs are compared by their parsed parts, never as strings: `http://127.0.0.1:9090` as a string
prefix would also admit `http://127.0.0.1:90901` and `http://127.0.0.1:9090@evil.example`.
Anything a second URL parser could read differently (user info, backslashes, percent-escapes or
odd characters in the host, dot segments in the path) is refused rather than interpreted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# Hosts of in-cluster Services: <service>.<namespace>.svc[.cluster.local].
DEFAULT_ALLOWED: tuple[str, ...] = ("*.svc", "*.svc.cluster.local")
_SCHEMES = {"http": 80, "https": 443}
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
# Characters that no URL we accept contains: whitespace, controls, backslash, user info.
_ODD = re.compile(r"[\s\x00-\x1f\x7f\\@]")


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


@dataclass(frozen=True)
class Entry:
    """One allow-list entry; `scheme` and `path` are None for a host pattern."""

    text: str
    host: str
    wildcard: bool
    port: int | None
    scheme: str | None = None
    path: str | None = None

    def admits(self, target: _Target) -> bool:
        host_ok = target.host.endswith("." + self.host) if self.wildcard else target.host == self.host
        if not host_ok or (self.port is not None and self.port != target.port):
            return False
        if self.scheme is None or self.path is None:
            return True
        if self.scheme != target.scheme:
            return False
        return not self.path or target.path == self.path or target.path.startswith(self.path + "/")


@dataclass(frozen=True)
class AllowList:
    """The metrics endpoints this operator may call; `refusal(url)` says why one is not allowed."""

    entries: tuple[Entry, ...]

    @classmethod
    def parse(cls, texts: Iterable[str]) -> AllowList:
        """From flag / Helm values; raises ValueError naming the first bad entry."""
        entries = tuple(parse_entry(t) for t in texts)
        if not entries:
            raise ValueError("the metrics-endpoint allow-list is empty: no SpeechCluster could work")
        return cls(entries)

    @classmethod
    def default(cls) -> AllowList:
        return cls.parse(DEFAULT_ALLOWED)

    def __str__(self) -> str:
        return ", ".join(e.text for e in self.entries)

    def refusal(self, url: str) -> str | None:
        """None when `url` may be called; otherwise why not (no request has been made)."""
        try:
            target = _target(url)
        except ValueError as err:
            return str(err)
        if any(e.admits(target) for e in self.entries):
            return None
        return f"{target.scheme}://{_netloc(target.host, target.port)} matches no allowed entry"


def parse_entry(text: str) -> Entry:
    """A host pattern (`*.svc`, `prom.monitoring.svc:9090`) or a URL prefix (`https://h/p`)."""
    raw = text.strip()
    if "://" in raw:
        try:
            target = _target(raw)
        except ValueError as err:
            raise ValueError(f"allowed metrics endpoint {text!r}: {err}") from None
        return Entry(raw, target.host, False, target.port, target.scheme, target.path)
    host, _, port = raw.partition(":")
    wildcard = host.startswith("*.")
    host = host.removeprefix("*.").lower()
    if "*" in host or _ODD.search(raw) or not _valid_host(host) or (wildcard and _is_ip(host)):
        raise ValueError(
            f"allowed metrics endpoint {text!r}: want a host, `*.suffix`, either with an optional "
            f":port, or a URL prefix like https://prometheus.example.com/prefix"
        )
    return Entry(raw, host, wildcard, _port(port, text) if port else None)


def _target(url: str) -> _Target:
    """The parts of a URL that decide where a request goes; ValueError for anything ambiguous."""
    if _ODD.search(url):
        raise ValueError("the URL holds user info, a backslash, whitespace or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"scheme {scheme or '(none)'!r} is not http or https")
    host = (parts.hostname or "").rstrip(".")
    if not _valid_host(host):
        raise ValueError("the host is not a DNS name or an IP address")
    try:
        port = _SCHEMES[scheme] if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ValueError("the port is not a number from 1 to 65535")
    path = parts.path.rstrip("/")
    if any(unquote(seg) in (".", "..") or "%2f" in seg.lower() for seg in path.split("/")):
        raise ValueError("the path has dot segments or encoded slashes")
    return _Target(scheme, host, port, path)


def _valid_host(host: str) -> bool:
    """An IP address, or a DNS name whose last label is not all digits: `127.1` or `2130706433`
    are what inet_aton reads as 127.0.0.1, so a name of that shape is no name."""
    if not host or len(host) > 253:
        return False
    return _is_ip(host) or (bool(_DNS_NAME.match(host)) and not host.rsplit(".", 1)[-1].isdigit())


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"allowed metrics endpoint {entry!r}: port {text!r} is not 1-65535")
    return int(text)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
