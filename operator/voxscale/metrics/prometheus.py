"""MetricsSource on a Prometheus HTTP API (prometheus-api-client); failures become "no data".

Failure reasons are named by `failures.describe` (class and status code, never the answer's
body), and redirects are not followed: `handlers` checks the URL against the operator's
allow-list before a source is built, and a 3xx must not lead somewhere the list never saw.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import requests
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from voxscale import names
from voxscale.api import PrometheusSpec, QueryTemplates
from voxscale.decide.types import ClassMetrics, ShardMetrics
from voxscale.metrics import answers, failures
from voxscale.metrics.promql import (
    DEFAULT_PANIC_WINDOW,
    DEFAULT_TEMPLATES,
    DEFAULT_WINDOW,
    StreamQueries,
    build_class_queries,
    build_queries,
    build_stream_queries,
    check_template,
    check_window,
)
from voxscale.metrics.protocol import PodStreams, ShardSelector
from voxscale.series import History

log = logging.getLogger(__name__)

# Prometheus refuses range queries over 11,000 points per series; 7 days at 30 s is 20,160, so
# long histories are fetched in chunks of at most this many points.
MAX_POINTS_PER_QUERY = 10_000
# The default is two scrape intervals of 30 s: an answer older than that is not "now".
DEFAULT_MAX_STALENESS_SECONDS = 60.0
_FIELDS = ("rate", "panic_rate", "latency", "queue", "batch_efficiency")
"""The instant queries of one tick, in the order they are sent (`promql.Queries`)."""


class _QueryError(Exception):
    """A query failed (HTTP error, bad JSON ...); the message names the class, never the body."""


class _UnreachableError(_QueryError):
    """Transport failure: the remaining queries of this tick are skipped, not waited on again."""


class PrometheusSource:
    """Reads one SpeechCluster's shards from Prometheus; TLS verified and every call time-bounded.

    The bearer token goes only into the Authorization header; repr, logs and error strings
    never contain it.
    """

    def __init__(
        self,
        url: str,
        *,
        bearer_token: str | None = None,
        insecure_skip_verify: bool = False,
        timeout_seconds: float = 5.0,
        templates: QueryTemplates | None = None,
        window: str = DEFAULT_WINDOW,
        panic_window: str = DEFAULT_PANIC_WINDOW,
        quantile: float = 0.95,
        max_staleness_seconds: float = DEFAULT_MAX_STALENESS_SECONDS,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        self._url = url.rstrip("/")
        self._token = bearer_token or None
        self._verify = not insecure_skip_verify
        self._timeout = float(timeout_seconds)
        self._window = check_window(window)
        self._panic_window = check_window(panic_window)
        self._quantile = quantile
        self._max_staleness = max_staleness_seconds
        self._templates: dict[str, str | None] = {}
        for field in DEFAULT_TEMPLATES:
            template = getattr(templates, field, None) if templates else None
            self._templates[field] = check_template(template) if template else None
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        session = _NoRedirects()
        session.verify = self._verify
        # One attempt per call: the library default (3 retries, 1 s backoff) could hold a 10 s
        # tick for 4 × 5 s + 7 s; decide() counts failed ticks and falls back on its own.
        self._client = PrometheusConnect(
            url=self._url,
            headers=headers,
            disable_ssl=insecure_skip_verify,
            retry=Retry(total=0, raise_on_status=False),
            session=session,
            timeout=self._timeout,
        )

    @classmethod
    def from_spec(
        cls, spec: PrometheusSpec, *, bearer_token: str | None, quantile: float,
        window: str | None = None, panic_window_seconds: int | None = None,
    ) -> PrometheusSource:
        """From a SpeechCluster's `prometheus` block (window: its `rateWindow` unless given) and
        its `scaling.reactive.panicWindowSeconds` (the spec default unless given); the caller
        has read the token Secret."""
        panic = DEFAULT_PANIC_WINDOW if panic_window_seconds is None else f"{panic_window_seconds}s"
        return cls(
            spec.url, bearer_token=bearer_token, insecure_skip_verify=spec.insecure_skip_verify,
            timeout_seconds=spec.timeout_seconds, templates=spec.queries, window=window or spec.rate_window,
            panic_window=panic, quantile=quantile,
        )

    def __repr__(self) -> str:
        auth = "bearer-token" if self._token else "none"
        return (
            f"PrometheusSource(url={_public_url(self._url)!r}, auth={auth}, "
            f"verify_tls={self._verify}, timeout_seconds={self._timeout})"
        )

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ instant: observe

    def observe(self, selector: ShardSelector, now: float) -> ShardMetrics:
        queries = build_queries(
            selector.namespace, selector.cluster, selector.shard, selector.model,
            templates=self._templates, window=self._window, panic_window=self._panic_window,
            quantile=self._quantile, traffic_class=selector.traffic_class,
        )
        values, errors = self._instants({f: getattr(queries, f) for f in _FIELDS}, now)
        if errors:
            log.warning("prometheus: %s/%s/%s: %s", selector.namespace, selector.cluster,
                        selector.shard, "; ".join(errors))
        return ShardMetrics(
            at=now, rate=values["rate"], panic_rate=values["panic_rate"],
            latency_ms=values["latency"], queue=values["queue"],
            batch_efficiency=values["batch_efficiency"], errors=tuple(errors),
        )

    def _instants(
        self, queries: dict[str, str | None], now: float
    ) -> tuple[dict[str, float | None], list[str]]:
        """Each query in order (None: not read); after a transport failure the rest are skipped."""
        values: dict[str, float | None] = {}
        errors: list[str] = []
        unreachable: str | None = None
        for field, query in queries.items():
            values[field] = None
            if query is None:
                continue
            if unreachable:
                errors.append(f"{field}: skipped: {unreachable}")
                continue
            reading, unreachable = self._instant(field, query, now)
            values[field] = reading.value
            if reading.reason:
                errors.append(reading.reason)
        return values, errors

    def _instant(self, name: str, query: str, now: float) -> tuple[answers.Reading, str | None]:
        """One instant query evaluated at `now`; never raises."""
        try:
            result = self._call(self._client.custom_query, query=query, params=self._at(now))
        except _UnreachableError as exc:
            return answers.Reading(None, f"{name}: query failed: {exc}"), str(exc)
        except _QueryError as exc:
            return answers.Reading(None, f"{name}: query failed: {exc}"), None
        return answers.one_value(name, result, now, self._max_staleness), None

    # ------------------------------------------------------------------ instant: streams

    def pod_streams(self, selector: ShardSelector, now: float) -> PodStreams:
        query = self._stream_queries(selector).active_streams
        try:
            result = self._call(self._client.custom_query, query=query, params=self._at(now))
        except _QueryError as exc:
            return PodStreams(now, {}, (f"active_streams: query failed: {exc}",))
        by_pod, reasons = answers.per_label("active_streams", result, names.PROM_LABEL_POD, now,
                                            self._max_staleness)
        if not by_pod and not reasons:
            reasons = ("active_streams: empty result (no series matched)",)
        return PodStreams(now, by_pod, reasons)

    def session_seconds(self, selector: ShardSelector, now: float) -> float | None:
        reading, _ = self._instant("session_p99", self._stream_queries(selector).session_p99, now)
        if reading.reason:
            log.debug("prometheus: %s/%s/%s: %s", selector.namespace, selector.cluster,
                      selector.shard, reading.reason)
        return reading.value

    # ------------------------------------------------------------------ instant: classes

    def class_metrics(self, selector: ShardSelector, traffic_class: str, now: float) -> ClassMetrics:
        queries = build_class_queries(selector.namespace, selector.cluster, selector.shard,
                                      selector.model, traffic_class, window=self._window)
        values, errors = self._instants(
            {"backlog": queries.backlog, "oldest": queries.oldest, "rate": queries.rate}, now)
        if errors:
            log.warning("prometheus: %s/%s/%s class %s: %s", selector.namespace, selector.cluster,
                        selector.shard, traffic_class, "; ".join(errors))
        return ClassMetrics(traffic_class, now, rate=values["rate"], backlog=values["backlog"],
                            oldest_seconds=values["oldest"], errors=tuple(errors))

    def _stream_queries(self, selector: ShardSelector) -> StreamQueries:
        return build_stream_queries(selector.namespace, selector.cluster, selector.shard,
                                    selector.model, window=self._window)

    # ------------------------------------------------------------------ range: history

    def history(self, selector: ShardSelector, start: float, end: float, step: float) -> History:
        if step <= 0:
            raise ValueError(f"step must be > 0 seconds, got {step}")
        query = build_queries(
            selector.namespace, selector.cluster, selector.shard, selector.model,
            templates=self._templates, window=self._window, quantile=self._quantile,
            traffic_class=selector.traffic_class,
        ).rate
        n = answers.grid_size(start, end, step)
        chunks: list[np.ndarray[Any, np.dtype[np.float64]]] = []
        for first in range(0, n, MAX_POINTS_PER_QUERY):
            count = min(MAX_POINTS_PER_QUERY, n - first)
            chunk, reason = self._range(query, start + first * step, step, count)
            chunks.append(chunk.values)
            if reason:
                log.warning("prometheus: history %s/%s/%s [%d..%d): %s", selector.namespace,
                            selector.cluster, selector.shard, first, first + count, reason)
        values = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float64)
        return History(float(start), float(step), values)

    def _range(self, query: str, start: float, step: float, n: int) -> tuple[History, str | None]:
        end = start + (n - 1) * step
        # The client rounds start/end to whole seconds; `params` overrides them with the exact
        # grid so sample i lands at start + i*step (e.g. start 1000.5, step 60).
        params = {"start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}",
                  "timeout": f"{self._timeout:g}s"}
        try:
            result = self._call(
                self._client.custom_query_range, query=query, start_time=_dt(start),
                end_time=_dt(end), step=f"{step:g}", params=params,
            )
        except _QueryError as exc:
            return answers.fill_history(None, start, step, n)[0], f"query failed: {exc}"
        return answers.fill_history(result, start, step, n)

    # ------------------------------------------------------------------ plumbing

    def _at(self, now: float) -> dict[str, str]:
        """An instant query's parameters: evaluated at `now`, bounded by the timeout."""
        return {"time": f"{now:.3f}", "timeout": f"{self._timeout:g}s"}

    def _call(self, method: Any, **kwargs: Any) -> Any:
        """Run a client call; any failure becomes _QueryError (or a subclass), redacted."""
        try:
            return method(**kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _UnreachableError(self._describe(exc)) from None
        except Exception as exc:  # bad JSON, HTTP 4xx/5xx, odd payloads: all are "no data"
            raise _QueryError(self._describe(exc)) from None

    def _describe(self, exc: BaseException) -> str:
        """The failure's class and status code: no body, header or token (see failures.py)."""
        return failures.describe(exc, timeout_seconds=self._timeout)


class _NoRedirects(requests.Session):
    """Every request is sent with allow_redirects=False: a 3xx is answered as the error it is."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _public_url(url: str) -> str:
    """The URL without any user:password@ part."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
