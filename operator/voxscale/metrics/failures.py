"""Name an outbound call's failure by its class and status code, never by what the far end sent.

These strings reach logs, SpeechCluster status and Events, which whoever created the
SpeechCluster can read. The far end is whatever `spec.prometheus.url` names, so quoting its
answer (prometheus-api-client puts the whole response body into its exception text) would let
that user read any HTTP service the operator can reach. Only fixed phrases, a status code,
our own timeout and exception class names go out: e.g. `HTTP 403 from the metrics endpoint`.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException

# prometheus-api-client's text is `HTTP Status Code 403 (b'<the body>')`: only the code is kept.
_STATUS = re.compile(r"^HTTP Status Code (\d{3})\b")


def describe(exc: BaseException, *, timeout_seconds: float) -> str:
    """A short, body-free reason for `exc` raised by a call to the metrics endpoint."""
    if isinstance(exc, PrometheusApiClientException):
        return _http_status(str(exc))
    if isinstance(exc, requests.Timeout):
        return f"timeout after {timeout_seconds:g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        if _caused_by(exc, ssl.SSLCertVerificationError):
            return "TLS certificate verification failed"
        return "TLS handshake failed"
    if isinstance(exc, requests.ConnectionError):
        return _connection(exc)
    if isinstance(exc, requests.exceptions.InvalidHeader):
        # A token with a newline or other byte no header may carry; the text would quote it.
        return "invalid request header (check the bearer token Secret's value)"
    if isinstance(exc, ValueError) and "JSON" in type(exc).__name__:
        return "the answer is not valid JSON"
    if isinstance(exc, (KeyError, TypeError, IndexError)):
        return f"the answer has no data.result ({type(exc).__name__})"
    if isinstance(exc, requests.RequestException):
        return f"request failed ({type(exc).__name__})"
    return f"unexpected error ({type(exc).__name__})"


def _http_status(text: str) -> str:
    match = _STATUS.match(text)
    if match is None:
        return "error answer from the metrics endpoint"
    code = int(match.group(1))
    if 300 <= code < 400:
        return f"HTTP {code} from the metrics endpoint (redirects are not followed)"
    return f"HTTP {code} from the metrics endpoint"


def _connection(exc: BaseException) -> str:
    if _caused_by(exc, ConnectionRefusedError):
        return "connection refused"
    if _caused_by(exc, socket.gaierror):
        return "host name not resolved"
    if _caused_by(exc, ConnectionResetError):
        return "connection reset"
    return "connection failed"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(e, kind) for e in _chain(exc))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what lies under it: causes, contexts, urllib3's `.reason`, wrapped args."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo and len(seen) < 16:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        under = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        todo += [u for u in under if isinstance(u, BaseException)]
