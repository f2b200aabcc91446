"""PromQL is built only from validated label values and always carries the operator's namespace."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxscale.api import ReactiveSpec
from voxscale.metrics.promql import (
    DEFAULT_PANIC_WINDOW,
    DEFAULT_TEMPLATES,
    build_queries,
    check_template,
    check_value,
    quantile_label,
    quote,
    render,
    selector,
)

SEL = 'namespace="prod",voxscale_cluster="asr",voxscale_shard="eu-west",model="whisper"'


def test_default_queries_read_tritons_metrics_for_exactly_one_shard() -> None:
    q = build_queries("prod", "asr", "eu-west", "whisper", quantile=0.95, window="1m")
    assert q.rate == f"sum(rate(nv_inference_request_success{{{SEL}}}[1m]))"
    assert q.latency == (
        f'max(last_over_time(nv_inference_request_summary_us{{{SEL},quantile="0.95"}}[1m]))'
        " / 1000"
    )
    assert q.queue == f"sum(last_over_time(nv_inference_pending_request_count{{{SEL}}}[1m]))"
    assert q.batch_efficiency == (
        f"sum(rate(nv_inference_count{{{SEL}}}[1m])) / sum(rate(nv_inference_exec_count{{{SEL}}}[1m]))"
    )


def test_the_panic_rate_is_the_rate_query_over_the_panic_window() -> None:
    q = build_queries("prod", "asr", "eu-west", "whisper", window="1m", panic_window="30s")
    assert q.panic_rate == f"sum(rate(nv_inference_request_success{{{SEL}}}[30s]))"
    assert q.panic_rate == q.rate.replace("[1m]", "[30s]")


def test_the_panic_window_defaults_to_the_specs_default() -> None:
    assert f"{ReactiveSpec().panic_window_seconds}s" == DEFAULT_PANIC_WINDOW
    assert build_queries("n", "c", "s", "m").panic_rate.endswith(f"[{DEFAULT_PANIC_WINDOW}]))")


@pytest.mark.parametrize(
    ("q", "label"),
    [(0.5, "0.5"), (0.9, "0.9"), (0.95, "0.95"), (0.99, "0.99")],
    ids=["p50", "p90", "p95", "p99"],
)
def test_quantile_label_matches_the_form_triton_exports(q: float, label: str) -> None:
    assert quantile_label(q) == label
    assert f'quantile="{label}"' in build_queries("n", "c", "s", "m", quantile=q).latency


def test_a_user_template_replaces_only_its_own_query() -> None:
    q = build_queries(
        "prod", "asr", "eu-west", "whisper",
        templates={"rate": "sum(rate(my_requests_total{selector}[{window}]))"}, window="2m",
    )
    assert q.rate == f"sum(rate(my_requests_total{{{SEL}}}[2m]))"
    assert q.queue.startswith("sum(last_over_time(nv_inference_pending_request_count{")


INJECTIONS = [
    ("shard", 'x"} or vector(1e9) #'),
    ("shard", "eu-west\n"),
    ("shard", "eu\\west"),
    ("shard", "eu{west}"),
    ("shard", ""),
    ("shard", "a" * 64),
    ("namespace", "prod\n"),
    ("namespace", 'prod",namespace=~".*'),
    ("namespace", "Prod"),
    ("namespace", "prod.svc"),
    ("cluster", "asr'"),
    ("cluster", "-asr"),
    ("model", 'whisper"}'),
    ("model", "whi sper"),
    ("model", "whisper\u200b"),
]


@pytest.mark.parametrize(("kind", "value"), INJECTIONS, ids=[repr(v) for _, v in INJECTIONS])
def test_values_outside_the_kubernetes_charset_are_rejected_with_a_clear_error(
    kind: str, value: str
) -> None:
    args = {"namespace": "prod", "cluster": "asr", "shard": "eu-west", "model": "whisper"}
    args[kind] = value
    with pytest.raises(ValueError, match=rf"^{kind} .* is not a valid Kubernetes name"):
        build_queries(**args)


def _unquote(literal: str) -> str:
    assert literal[0] == literal[-1] == '"'
    out, i, body = [], 0, literal[1:-1]
    while i < len(body):
        if body[i] == "\\":
            out.append({"n": "\n"}.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            assert body[i] != '"', "unescaped quote would end the string early"
            out.append(body[i])
            i += 1
    return "".join(out)


@given(st.text())
def test_quote_escapes_anything_into_one_string_literal(value: str) -> None:
    literal = quote(value)
    assert "\n" not in literal
    assert _unquote(literal) == value


@given(st.text(max_size=70))
def test_any_shard_name_is_either_rejected_or_appears_verbatim_in_one_matcher(value: str) -> None:
    try:
        matchers = selector("prod", "asr", value, "whisper")
    except ValueError:
        return
    assert matchers == (
        f'namespace="prod",voxscale_cluster="asr",voxscale_shard="{value}",model="whisper"'
    )
    assert re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]*", value)


@given(st.text(max_size=70))
def test_no_namespace_value_can_change_the_query_structure(value: str) -> None:
    try:
        rate = build_queries(value, "asr", "eu-west", "whisper").rate
    except ValueError:
        return
    assert rate.replace(f'namespace="{value}"', 'namespace="NS"') == (
        'sum(rate(nv_inference_request_success{namespace="NS",voxscale_cluster="asr",'
        'voxscale_shard="eu-west",model="whisper"}[1m]))'
    )


REJECTED_TEMPLATES = [
    ("no selector at all", "sum(rate(nv_inference_request_success[1m]))", "no {selector}"),
    ("own namespace matcher", 'sum(x{namespace="other"})', "no {selector}"),
    ("own matcher beside selector", 'x{selector} + y{namespace="other"}', "braces outside"),
    ("bare second metric", "sum(x{selector}) + sum(y)", "reads y without"),
    ("bare metric in on()", "x{selector} * on(pod) group_left z", "reads z without"),
    ("unknown placeholder", "x{selector}[{range}]", "braces outside"),
    ("extra matcher left open", 'x{selector,a="}', "plain label matchers"),
    ("extra matcher is an expression", "x{selector,a=b}", "plain label matchers"),
    ("brace inside a string", 'label_replace(x{selector}, "a", "}", "b", "")', "braces outside"),
]


@pytest.mark.parametrize(
    ("template", "reason"),
    [(t, r) for _, t, r in REJECTED_TEMPLATES],
    ids=[n for n, _, _ in REJECTED_TEMPLATES],
)
def test_templates_that_could_select_series_outside_the_selector_are_rejected(
    template: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        check_template(template)


ACCEPTED_TEMPLATES = [
    ("default rate", DEFAULT_TEMPLATES["rate"], "sum(rate(nv_inference_request_success{NS}[1m]))"),
    ("grouping label list", "sum by (pod) (x{selector})", "sum by (pod) (x{NS})"),
    ("vector matching", "x{selector} / on(pod) group_left y{selector}",
     "x{NS} / on(pod) group_left y{NS}"),
    ("histogram quantile", "histogram_quantile({quantile}, sum by (le) (rate(h{selector}[{window}])))",
     "histogram_quantile(0.9, sum by (le) (rate(h{NS}[1m])))"),
    ("extra matchers", 'x{selector,le!="+Inf", model="{model}"}', 'x{NS,le!="+Inf", model="m"}'),
    ("widening extra is still ANDed", 'x{selector,namespace=~".*"}', 'x{NS,namespace=~".*"}'),
    ("offset and numbers", "x{selector} offset 5m * 1e3", "x{NS} offset 5m * 1e3"),
]


@pytest.mark.parametrize(
    ("template", "expected"),
    [(t, e) for _, t, e in ACCEPTED_TEMPLATES],
    ids=[n for n, _, _ in ACCEPTED_TEMPLATES],
)
def test_well_formed_templates_render_with_the_namespace_in_every_selector(
    template: str, expected: str
) -> None:
    ns = 'namespace="prod"'
    out = render(template, matchers=ns, window="1m", quantile=0.9, model="m")
    assert out == expected.replace("NS", ns)


@pytest.mark.parametrize(
    "window", ["1m)) or vector(1", "", "5", "1m\n"], ids=["expression", "empty", "unitless", "nl"]
)
def test_a_window_that_is_not_a_duration_is_rejected(window: str) -> None:
    with pytest.raises(ValueError, match="not a PromQL duration"):
        build_queries("prod", "asr", "eu-west", "whisper", window=window)


def test_check_value_returns_valid_values_unchanged() -> None:
    assert check_value("namespace", "team-a") == "team-a"
    assert check_value("model", "_ensemble.v2") == "_ensemble.v2"


def test_a_panic_window_that_is_not_a_duration_is_rejected_too() -> None:
    with pytest.raises(ValueError, match="not a PromQL duration"):
        build_queries("prod", "asr", "eu-west", "whisper", panic_window="6s)) or vector(1")
