"""The metrics-endpoint allow-list: which URLs a SpeechCluster may name, decided by parsed parts."""

from __future__ import annotations

import pytest

from voxscale.metrics.endpoints import DEFAULT_ALLOWED, AllowList, parse_entry

DEFAULT = AllowList.default()
# An operator whose admin added a test Prometheus, a tenant of a remote Thanos and one host.
CUSTOM = AllowList.parse(
    ["http://127.0.0.1:9090", "https://thanos.example.com/tenant-a", "prom.example.net:9443"]
)

# name -> (allow-list, url, refusal fragment or None when allowed)
SCENARIOS: dict[str, tuple[AllowList, str, str | None]] = {
    "the example's in-cluster Service": (DEFAULT, "http://prometheus-operated.monitoring.svc:9090", None),
    "a Service by its full cluster name, https": (
        DEFAULT, "https://prometheus.monitoring.svc.cluster.local/prometheus", None),
    "upper-case scheme and host": (DEFAULT, "HTTP://Prometheus.Monitoring.SVC:9090", None),
    "a trailing-dot FQDN": (DEFAULT, "http://prometheus.monitoring.svc.:9090", None),
    "the apiserver on loopback": (DEFAULT, "https://127.0.0.1:6443", "https://127.0.0.1:6443 matches no"),
    "the cloud metadata service": (DEFAULT, "http://169.254.169.254/latest", "169.254.169.254:80 matches no"),
    "a bare 'svc' host is not below .svc": (DEFAULT, "http://svc:9090", "http://svc:9090 matches no"),
    "a .svc lookalike suffix": (DEFAULT, "http://evil.svc.example.com", "evil.svc.example.com:80 matches"),
    "user info that hides the real host": (DEFAULT, "http://prom.monitoring.svc@10.0.0.1/", "user info"),
    "a backslash parsers disagree on": (DEFAULT, "http://10.0.0.1\\@prom.monitoring.svc/", "backslash"),
    "an encoded dot in the host": (DEFAULT, "http://prom%2emonitoring.svc:9090", "not a DNS name"),
    "a fragment that looks like the suffix": (DEFAULT, "http://10.0.0.1#.svc", "10.0.0.1:80 matches no"),
    "a scheme other than http(s)": (DEFAULT, "file://prom.monitoring.svc/etc/passwd", "scheme 'file'"),
    "port zero": (DEFAULT, "http://prom.monitoring.svc:0", "port is not a number"),
    "loopback as one decimal number": (DEFAULT, "http://2130706433:6443", "not a DNS name"),
    "loopback in short form": (DEFAULT, "http://127.1:6443", "not a DNS name"),
    "the listed Prometheus": (CUSTOM, "http://127.0.0.1:9090/", None),
    "the listed port is not a string prefix": (CUSTOM, "http://127.0.0.1:90901", "port is not a number"),
    "another loopback port": (CUSTOM, "http://127.0.0.1:6443", "http://127.0.0.1:6443 matches no"),
    "the listed host over the other scheme": (CUSTOM, "https://127.0.0.1:9090", "matches no"),
    "below the tenant prefix": (CUSTOM, "https://thanos.example.com/tenant-a/api", None),
    "the default https port written out": (CUSTOM, "https://thanos.example.com:443/tenant-a", None),
    "a sibling of the tenant prefix": (CUSTOM, "https://thanos.example.com/tenant-ab", "matches no"),
    "out of the prefix by dot segments": (
        CUSTOM, "https://thanos.example.com/tenant-a/../tenant-b", "dot segments"),
    "out of the prefix by encoded dots": (
        CUSTOM, "https://thanos.example.com/tenant-a/%2E%2E/tenant-b", "dot segments"),
    "a host pattern with its port": (CUSTOM, "https://prom.example.net:9443/x", None),
    "a host pattern on another port": (CUSTOM, "https://prom.example.net:9444/x", "matches no"),
}


@pytest.mark.parametrize(("allowed", "url", "refusal"), list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_a_url_is_allowed_only_when_an_entry_admits_its_parsed_parts(
    allowed: AllowList, url: str, refusal: str | None
) -> None:
    got = allowed.refusal(url)
    if refusal is None:
        assert got is None
    else:
        assert got is not None and refusal in got, got


BAD_ENTRIES = {
    "everything": "*",
    "an empty suffix": "*.",
    "a wildcard inside": "prom.*.svc",
    "a double wildcard": "**.svc",
    "a wildcard in a URL prefix": "https://*.example.com",
    "a wildcard over an IP": "*.0.0.1",
    "port zero": "prom.monitoring.svc:0",
    "a port that is no number": "prom.monitoring.svc:http",
    "user info in a prefix": "http://user@prom.example.com",
    "an empty entry": "",
}


@pytest.mark.parametrize("entry", list(BAD_ENTRIES.values()), ids=list(BAD_ENTRIES))
def test_a_bad_entry_is_refused_at_startup_naming_the_entry(entry: str) -> None:
    with pytest.raises(ValueError, match="allowed metrics endpoint"):
        parse_entry(entry)


def test_the_default_allows_in_cluster_services_on_any_port_and_either_scheme() -> None:
    assert DEFAULT_ALLOWED == ("*.svc", "*.svc.cluster.local")
    assert str(DEFAULT) == "*.svc, *.svc.cluster.local"
    for url in ("http://a.b.svc:1", "https://a.b.svc:65535", "http://a.b.svc.cluster.local"):
        assert DEFAULT.refusal(url) is None, url


def test_an_empty_allow_list_is_refused_rather_than_allowing_nothing_silently() -> None:
    with pytest.raises(ValueError, match="empty"):
        AllowList.parse([])
