"""failures.describe: each way a metrics call fails becomes a fixed phrase; no text of the far end,
of a header or of the token survives, whatever the exception carried."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests
import urllib3
from prometheus_api_client.exceptions import PrometheusApiClientException

from voxscale.metrics.failures import describe
from voxscale.metrics.prometheus import PrometheusSource
from voxscale.metrics.protocol import ShardSelector

CANARY = "canary-0b7e db_password=hunter2"


def _caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def _refused() -> BaseException:
    # requests' real shape: ConnectionError(MaxRetryError(reason=NewConnectionError)) from errno 111
    new = _caused(urllib3.exceptions.NewConnectionError(None, CANARY), ConnectionRefusedError(111, CANARY))
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, CANARY, reason=new))


# name -> (exception, the whole reason)
FAILURES: dict[str, tuple[BaseException, str]] = {
    "an HTTP error with a body": (
        PrometheusApiClientException(f"HTTP Status Code 403 (b'{CANARY}')"),
        "HTTP 403 from the metrics endpoint"),
    "a redirect": (
        PrometheusApiClientException(f"HTTP Status Code 301 (b'{CANARY}')"),
        "HTTP 301 from the metrics endpoint (redirects are not followed)"),
    "a client error of another shape": (
        PrometheusApiClientException(CANARY), "error answer from the metrics endpoint"),
    "a refused connection": (_refused(), "connection refused"),
    "an unknown host": (_caused(requests.ConnectionError(CANARY), socket.gaierror(-2, CANARY)),
                        "host name not resolved"),
    "a reset connection": (_caused(requests.ConnectionError(CANARY), ConnectionResetError(104, CANARY)),
                           "connection reset"),
    "another connection error": (requests.ConnectionError(CANARY), "connection failed"),
    "a connect timeout": (requests.ConnectTimeout(CANARY), "timeout after 5 s"),
    "a read timeout": (requests.ReadTimeout(CANARY), "timeout after 5 s"),
    "an untrusted certificate": (
        _caused(requests.exceptions.SSLError(CANARY), ssl.SSLCertVerificationError(1, CANARY)),
        "TLS certificate verification failed"),
    "another TLS failure": (requests.exceptions.SSLError(CANARY), "TLS handshake failed"),
    "a header the token broke": (
        requests.exceptions.InvalidHeader(f"Invalid header value b'Bearer {CANARY}\\n'"),
        "invalid request header (check the bearer token Secret's value)"),
    "a body that is no JSON": (requests.JSONDecodeError(CANARY, CANARY, 0), "the answer is not valid JSON"),
    "JSON without data": (KeyError(CANARY), "the answer has no data.result (KeyError)"),
    "another requests error": (requests.exceptions.ChunkedEncodingError(CANARY),
                               "request failed (ChunkedEncodingError)"),
    "anything else": (RuntimeError(CANARY), "unexpected error (RuntimeError)"),
}


@pytest.mark.parametrize(("exc", "reason"), list(FAILURES.values()), ids=list(FAILURES))
def test_a_failure_is_named_by_its_class_and_status_code_only(exc: BaseException, reason: str) -> None:
    assert describe(exc, timeout_seconds=5.0) == reason


def test_a_token_no_header_can_carry_is_reported_without_being_quoted() -> None:
    token = f"line-one\n{CANARY}"  # a Secret value with an inner newline: requests refuses the header
    source = PrometheusSource("http://127.0.0.1:9", bearer_token=token, timeout_seconds=1)
    metrics = source.observe(ShardSelector("speech", "asr", "eu-en", "whisper"), 1_700_000_000.0)
    assert metrics.errors[0] == (
        "rate: query failed: invalid request header (check the bearer token Secret's value)"
    )
    assert all("hunter2" not in e for e in metrics.errors)
