"""Each SpeechCluster's Prometheus source: built only for an allowed URL, kept while its settings
and token stay the same, closed when replaced or when the cluster's daemon stops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from voxscale.api import SpeechClusterSpec
from voxscale.loop import ClusterRef
from voxscale.metrics.endpoints import AllowList
from voxscale.metrics.prometheus import PrometheusSource
from voxscale.metrics.protocol import MetricsSource


class ClosableSource(MetricsSource, Protocol):
    """A metrics source holding a connection pool (PrometheusSource): closed when replaced."""

    def close(self) -> None: ...


class SecretReader(Protocol):
    """Reads one key of a Secret (voxscale.k8s.Kube): the Prometheus bearer token."""

    def read_secret_key(self, namespace: str, name: str, key: str) -> str: ...


class EndpointNotAllowedError(ValueError):
    """spec.prometheus.url is not on the operator's allow-list; no request was sent to it."""


def endpoint_refusal(spec: SpeechClusterSpec, endpoints: AllowList) -> str | None:
    """None when the operator may call spec.prometheus.url; else what to change, for the user."""
    why = endpoints.refusal(spec.prometheus.url)
    if why is None:
        return None
    return (
        f"spec.prometheus.url is not on this operator's allow-list of metrics endpoints ({why}); "
        f"no request was sent. Point spec.prometheus.url at an allowed Prometheus ({endpoints}), "
        f"or have the operator's admin add it to the Helm value prometheus.allowedEndpoints "
        f"(flag --allowed-metrics-endpoint)"
    )


def prometheus_source(spec: SpeechClusterSpec, token: str | None) -> PrometheusSource:
    return PrometheusSource.from_spec(
        spec.prometheus, bearer_token=token, quantile=spec.slo.quantile,
        panic_window_seconds=spec.scaling.reactive.panic_window_seconds,
    )


@dataclass
class SourceCache:
    """One SpeechCluster's PrometheusSource, rebuilt only when its settings or token change.

    A new source per tick would open a fresh HTTP connection pool every interval (and leave the
    old one to the garbage collector); the Secret is still read every tick, so a rotated token
    takes effect on the next one. No source is built for a URL off `endpoints`, so none can
    send it a request (and no Secret is read for it).
    """

    endpoints: AllowList = field(default_factory=AllowList.default)
    build: Callable[[SpeechClusterSpec, str | None], ClosableSource] = prometheus_source
    """(spec, bearer token) -> a source; a fake one in tests."""
    key: tuple[str, float, int, str | None] | None = None
    source: ClosableSource | None = None

    def get(self, spec: SpeechClusterSpec, ref: ClusterRef, kube: SecretReader) -> ClosableSource:
        refusal = endpoint_refusal(spec, self.endpoints)
        if refusal is not None:
            self.close()
            raise EndpointNotAllowedError(refusal)
        token = bearer_token(spec, ref, kube)
        key = (spec.prometheus.model_dump_json(), spec.slo.quantile,
               spec.scaling.reactive.panic_window_seconds, token)
        if self.source is None or key != self.key:
            self.close()
            self.source = self.build(spec, token)
            self.key = key
        return self.source

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        self.source, self.key = None, None


def metrics_source(spec: SpeechClusterSpec, ref: ClusterRef, kube: SecretReader) -> PrometheusSource:
    """A PrometheusSource for `spec`, its token read now (a one-off source; the caller closes it)."""
    return prometheus_source(spec, bearer_token(spec, ref, kube))


def bearer_token(spec: SpeechClusterSpec, ref: ClusterRef, kube: SecretReader) -> str | None:
    secret = spec.prometheus.bearer_token_secret_ref
    return None if secret is None else kube.read_secret_key(ref.namespace, secret.name, secret.key)
