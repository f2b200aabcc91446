"""Per-shard PromQL built from validated label values, always scoped to the operator's namespace."""

# Which Triton metrics the default queries read, and why (source: triton-inference-server/server,
# docs/user_guide/metrics.md, "Inference Request Metrics" and "Latencies"):
#
# - rate: `nv_inference_request_success` counts requests (a batch-8 request counts 1), which is
#   what a client sends and what capacity per replica is measured in.
# - panic_rate: the rate template again, over the panic window (spec.scaling.reactive.
#   panicWindowSeconds, 30 s) instead of the stable one: Knative's panic metric. A user's `rate`
#   override applies to both, so the two always count the same thing.
# - latency: `nv_inference_request_summary_us`, Triton's end-to-end request-time *summary*. It is
#   off by default; the worker must run with `--metrics-config summary_latencies=true` and
#   `--metrics-config summary_quantiles=...` listing the SLO quantiles (names.TRITON_METRICS_CONFIG:
#   0.5, 0.9, 0.95, 0.99), else the `quantile="0.95"` series does not exist. The only histogram
#   Triton exports (`nv_inference_first_response_histogram_ms`) is for decoupled models, and the
#   `*_duration_us` counters give a mean, not a percentile, so the summary is the best default.
#   Summary quantiles cannot be merged across pods, so we take the `max` over pods: if every pod
#   has at most 5 % of its requests above its own p95, and M is the largest pod p95, then at most
#   5 % of the shard's requests are above M, so max is a safe upper bound on the shard's p95
#   (e.g. pods at 120 ms and 180 ms -> 180 ms). Microseconds / 1000 = milliseconds.
# - queue: `nv_inference_pending_request_count` (requests received but not yet executing).
# - batch efficiency: `nv_inference_count / nv_inference_exec_count` is Triton's documented mean
#   batch size (inferences per model execution).
#
# Gauges (latency, queue) are read through `last_over_time(...[window])`: a bare gauge is kept by
# Prometheus for 5 minutes after its pod vanished; with a 1m window a dead pod's last queue of 40
# stops counting after one minute instead of five.

from __future__ import annotations

import re
from dataclasses import dataclass

from voxscale import names
from voxscale.api import ReactiveSpec

DEFAULT_WINDOW = "1m"
DEFAULT_PANIC_WINDOW = f"{ReactiveSpec().panic_window_seconds}s"

DEFAULT_TEMPLATES: dict[str, str] = {
    "rate": "sum(rate(nv_inference_request_success{selector}[{window}]))",
    "latency": (
        'max(last_over_time(nv_inference_request_summary_us{selector,quantile="{quantile}"}'
        "[{window}])) / 1000"
    ),
    "queue": "sum(last_over_time(nv_inference_pending_request_count{selector}[{window}]))",
    "batch_efficiency": (
        "sum(rate(nv_inference_count{selector}[{window}]))"
        " / sum(rate(nv_inference_exec_count{selector}[{window}]))"
    ),
}

# Stream queries (spec.streaming), on the worker's own metrics (labels model and version, plus
# the scrape's pod labels; names.ACTIVE_STREAMS_METRIC, names.STREAM_DURATION_METRIC):
# - active_streams: live streams per pod, `by (pod)`: scale-in ranks the pods on it. A pod without
#   a series has no data and counts as busy (decide/victims.py), never as idle.
# - session_p99: the 99th percentile of closed streams' lengths over SESSION_WINDOW, from the
#   histogram's buckets summed over pods (buckets merge, unlike Triton's summaries). An hour,
#   because sessions last minutes: a 1m window of closed streams is mostly empty (NaN = no data).
SESSION_WINDOW = "1h"
SESSION_QUANTILE = 0.99
STREAM_TEMPLATES: dict[str, str] = {
    "active_streams": (
        f"sum by ({names.PROM_LABEL_POD}) "
        f"(last_over_time({names.ACTIVE_STREAMS_METRIC}{{selector}}[{{window}}]))"
    ),
    "session_p99": (
        "histogram_quantile({quantile}, sum by (le) "
        f"(rate({names.STREAM_DURATION_METRIC}_bucket{{selector}}[{{window}}])))"
    ),
}

# Class queries (spec.classes; docs/classes.md), on voxscale's own per-class series, each
# selected by the shard's matchers plus `class="<name>"` (the name is a checked DNS label):
# - rate, latency, queue of the Interactive class replace Triton's shard-wide ones, which count
#   batch requests too: a batch backlog would read as interactive load, and its long waits as
#   an SLO breach. Latency is a histogram (buckets merge across pods, unlike Triton's summary).
# - backlog, oldest, rate of each Batch class: queued work, the age of its oldest request, and
#   arrivals. Gauges through last_over_time, as above.
# Batch efficiency is not read under classes: batch work fills the same Triton batches, so the
# measured batch size says nothing about the interactive service time (decide/batching.py).
CLASS_TEMPLATES: dict[str, str] = {
    "rate": f"sum(rate({names.CLASS_REQUESTS_METRIC}{{{{selector,{{match}}}}}}[{{{{window}}}}]))",
    "latency": (
        "histogram_quantile({{quantile}}, sum by (le) "
        f"(rate({names.CLASS_LATENCY_METRIC}_bucket{{{{selector,{{match}}}}}}[{{{{window}}}}]))) * 1000"
    ),
    "queue": f"sum(last_over_time({names.CLASS_BACKLOG_METRIC}{{{{selector,{{match}}}}}}[{{{{window}}}}]))",
    "oldest": f"max(last_over_time({names.CLASS_OLDEST_METRIC}{{{{selector,{{match}}}}}}[{{{{window}}}}]))",
}

# A Kubernetes namespace is a DNS-1123 label; cluster and shard become pod label values; the model
# name follows api.ModelSpec. fullmatch() so a trailing newline is never accepted.
_NAMESPACE = re.compile(names.DNS_1123_LABEL_PATTERN)
_LABEL_VALUE = re.compile(names.LABEL_VALUE_PATTERN)
_MODEL = re.compile(names.MODEL_NAME_PATTERN)
_WINDOW = re.compile(r"([0-9]{1,6}(ms|s|m|h|d|w|y))+")
_MAX_LEN = names.NAME_MAX_LENGTH

_SELECTOR = re.compile(r"\{selector(?:,(?P<extra>[^{}]*))?\}")
# Extra matchers after `{selector,` must be whole, plain matchers: `quantile="0.95", le!="+Inf"`.
_MATCHER = r'\s*[A-Za-z_][A-Za-z0-9_]*\s*(=|!=|=~|!~)\s*"[^"\\\n]*"\s*'
_EXTRA = re.compile(rf"{_MATCHER}(,{_MATCHER})*,?\s*")
_SENTINEL = "\x00SELECTOR\x00"
_TOKEN = re.compile(
    r"""(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      |(?P<range>\[[^\]]*\])
      |(?P<num>\.?[0-9][0-9A-Za-z_.]*)
      |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
      |(?P<sel>\x00SELECTOR\x00)
      |(?P<space>\s+)
      |(?P<other>.)""",
    re.X | re.S,
)
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip


@dataclass(frozen=True)
class Queries:
    """The instant queries of one shard, ready to send."""

    rate: str
    panic_rate: str
    latency: str
    queue: str
    batch_efficiency: str | None
    """None under traffic classes: not read (see CLASS_TEMPLATES)."""


@dataclass(frozen=True)
class ClassQueries:
    """The queries of one Batch class of one shard (spec.classes), ready to send."""

    backlog: str
    oldest: str
    rate: str


@dataclass(frozen=True)
class StreamQueries:
    """The stream queries of one shard (spec.streaming), ready to send."""

    active_streams: str
    session_p99: str


def check_value(kind: str, value: str) -> str:
    """`value` if it is a valid `kind` (namespace, cluster, shard, model); else ValueError."""
    pattern = {"namespace": _NAMESPACE, "model": _MODEL}.get(kind, _LABEL_VALUE)
    if not isinstance(value, str) or len(value) > _MAX_LEN or not pattern.fullmatch(value):
        raise ValueError(
            f"{kind} {value!r} is not a valid Kubernetes name/label value "
            f"(1-{_MAX_LEN} characters matching {pattern.pattern}); "
            "refusing to build PromQL from it"
        )
    return value


def quote(value: str) -> str:
    """A PromQL double-quoted string literal; escapes backslash, quote and newline anyway."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def selector(namespace: str, cluster: str, shard: str, model: str) -> str:
    """The label matchers (no braces) that pick one shard's Triton series in one namespace."""
    pairs = (
        (names.PROM_LABEL_NAMESPACE, check_value("namespace", namespace)),
        (names.PROM_LABEL_CLUSTER, check_value("cluster", cluster)),
        (names.PROM_LABEL_SHARD, check_value("shard", shard)),
        (names.PROM_LABEL_MODEL, check_value("model", model)),
    )
    return ",".join(f"{label}={quote(value)}" for label, value in pairs)


def quantile_label(q: float) -> str:
    """0.95 -> '0.95': the shortest form, as Triton (prometheus-cpp) writes its quantile label."""
    if not 0 < q < 1:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    return repr(float(q))


def check_window(window: str) -> str:
    if not _WINDOW.fullmatch(window):
        raise ValueError(f"window {window!r} is not a PromQL duration such as '1m' or '90s'")
    return window


def render(template: str, *, matchers: str, window: str, quantile: float, model: str) -> str:
    """Fill a template's placeholders; ValueError if it could select series outside {selector}."""
    text = (
        template.replace("{window}", check_window(window))
        .replace("{quantile}", quantile_label(quantile))
        .replace("{model}", check_value("model", model))
    )
    skeleton = _SELECTOR.sub(_to_sentinel, text)
    _check_skeleton(template, skeleton)

    def expand(m: re.Match[str]) -> str:
        extra = m.group("extra")
        return "{" + matchers + ("," + extra.strip().rstrip(",") if extra else "") + "}"

    return _SELECTOR.sub(expand, text)


def check_template(template: str) -> str:
    """Validate a user template with placeholder values (for spec validation); returns it."""
    render(template, matchers='namespace="x"', window="1m", quantile=0.5, model="m")
    return template


def _to_sentinel(m: re.Match[str]) -> str:
    extra = m.group("extra")
    if extra is not None and not _EXTRA.fullmatch(extra):
        raise ValueError(
            f"extra matchers {extra!r} after {{selector, ...}} must be plain label matchers "
            'such as quantile="0.95"'
        )
    return _SENTINEL


def _check_skeleton(template: str, skeleton: str) -> None:
    """Every series the template reads must be selected through {selector}."""
    if _SENTINEL not in skeleton:
        raise ValueError(f"query template {template!r} has no {{selector}} placeholder")
    if "{" in skeleton or "}" in skeleton:
        raise ValueError(
            f"query template {template!r} has braces outside the placeholders "
            "{selector}, {window}, {quantile}, {model}; series may be selected only via {selector}"
        )
    bare = _bare_metric_names(skeleton)
    if bare:
        raise ValueError(
            f"query template {template!r} reads {', '.join(bare)} without {{selector}}; "
            "write e.g. my_metric{selector} so it stays inside the shard's namespace"
        )


def _bare_metric_names(skeleton: str) -> list[str]:
    """Identifiers used as metric names but not followed by the selector sentinel."""
    tokens = [
        (m.lastgroup, m.group()) for m in _TOKEN.finditer(skeleton) if m.lastgroup != "space"
    ]
    bare: list[str] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "ident" and text.lower() in _GROUPING and nxt == "(":
            i = _skip_parens(tokens, i + 1)  # a label list, not series
            continue
        is_word = text.lower() in _KEYWORDS | _AGGREGATIONS | _GROUPING
        if kind == "ident" and not is_word and nxt not in ("(", _SENTINEL):
            bare.append(text)
        i += 1
    return bare


def _skip_parens(tokens: list[tuple[str | None, str]], open_at: int) -> int:
    depth = 0
    for j in range(open_at, len(tokens)):
        depth += {"(": 1, ")": -1}.get(tokens[j][1], 0)
        if depth == 0:
            return j + 1
    return len(tokens)


def build_queries(
    namespace: str,
    cluster: str,
    shard: str,
    model: str,
    *,
    templates: dict[str, str | None] | None = None,
    window: str = DEFAULT_WINDOW,
    panic_window: str = DEFAULT_PANIC_WINDOW,
    quantile: float = 0.95,
    traffic_class: str | None = None,
) -> Queries:
    """The shard's queries: user templates where given, Triton defaults otherwise; the panic
    rate is the rate template over `panic_window`. With `traffic_class`, the rate, latency and
    queue are that class's (CLASS_TEMPLATES) and batch efficiency is not read."""
    matchers = selector(namespace, cluster, shard, model)
    if traffic_class is not None:
        return _class_queries(matchers, traffic_class, model, window=window,
                              panic_window=panic_window, quantile=quantile)
    chosen = {k: (templates or {}).get(k) or v for k, v in DEFAULT_TEMPLATES.items()}
    rendered = {
        k: render(t, matchers=matchers, window=window, quantile=quantile, model=model)
        for k, t in chosen.items()
    }
    panic = render(chosen["rate"], matchers=matchers, window=panic_window, quantile=quantile,
                   model=model)
    return Queries(panic_rate=panic, **rendered)


def build_stream_queries(
    namespace: str, cluster: str, shard: str, model: str, *, window: str = DEFAULT_WINDOW,
    session_window: str = SESSION_WINDOW,
) -> StreamQueries:
    """Live streams per pod (gauge read over `window`) and the p99 session length over
    `session_window`, for one shard."""
    matchers = selector(namespace, cluster, shard, model)
    return StreamQueries(
        active_streams=render(STREAM_TEMPLATES["active_streams"], matchers=matchers, window=window,
                              quantile=SESSION_QUANTILE, model=model),
        session_p99=render(STREAM_TEMPLATES["session_p99"], matchers=matchers, window=session_window,
                           quantile=SESSION_QUANTILE, model=model),
    )


def class_template(field: str, traffic_class: str) -> str:
    """CLASS_TEMPLATES[field] for one class: `{selector,class="<name>"}`."""
    match = f"{names.PROM_LABEL_CLASS}={quote(check_value('class', traffic_class))}"
    return CLASS_TEMPLATES[field].format(match=match)


def _class_queries(matchers: str, traffic_class: str, model: str, *, window: str,
                   panic_window: str, quantile: float) -> Queries:
    def one(field: str, range_: str) -> str:
        return render(class_template(field, traffic_class), matchers=matchers, window=range_,
                      quantile=quantile, model=model)

    return Queries(rate=one("rate", window), panic_rate=one("rate", panic_window),
                   latency=one("latency", window), queue=one("queue", window), batch_efficiency=None)


def build_class_queries(namespace: str, cluster: str, shard: str, model: str, traffic_class: str,
                        *, window: str = DEFAULT_WINDOW) -> ClassQueries:
    """Backlog, oldest queued age and arrival rate of one Batch class of one shard."""
    matchers = selector(namespace, cluster, shard, model)

    def one(field: str) -> str:
        return render(class_template(field, traffic_class), matchers=matchers, window=window,
                      quantile=0.5, model=model)

    return ClassQueries(backlog=one("queue"), oldest=one("oldest"), rate=one("rate"))
