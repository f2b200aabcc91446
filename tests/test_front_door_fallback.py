"""The local front door translates the fallback's infer rules: the winning rule is named once, in
Gateway API precedence, and only its weight rewrites the path; both rules share the shard's backend."""

from __future__ import annotations

from tests.test_render_fallback import HTTP, OWNER, _with_fallback
from voxscale.render.routes import render_route
from voxscale_lab.harness.front_door import Endpoint, Rewrite, haproxy_config, plan


def _config(shares: dict[str, float]) -> tuple[str, list[str]]:
    spec = _with_fallback(routing=HTTP)
    assert spec.routing is not None
    p = plan(render_route(OWNER, spec, spec.routing, shares=shares))
    config = haproxy_config(p, {"eu-en": [Endpoint("eu-en-0", "127.0.0.1:8000")]},
                            listen="127.0.0.1:9000", admin_socket="/tmp/admin.sock")
    lines = [line.strip() for line in config.splitlines()]
    return config, lines


def test_a_share_becomes_a_random_rewrite_of_the_winning_rules_requests_only() -> None:
    spec = _with_fallback(routing=HTTP)
    assert spec.routing is not None
    p = plan(render_route(OWNER, spec, spec.routing, shares={"eu-en": 0.3}))
    assert p.backends == tuple(s.name for s in spec.shards)  # the infer rules share the backends
    assert Rewrite("eu-en-infer", "/v2/models/asr-small/infer", 30, 100) in p.rewrites
    _, lines = _config({"eu-en": 0.3})
    rewrites = [line for line in lines if line.startswith("http-request set-path")]
    assert rewrites == ["http-request set-path /v2/models/asr-small/infer"
                        " if { var(txn.rule) -m str eu-en-infer } { rand(100) lt 30 }"]
    names = [line.split(" if ")[0] for line in lines if line.startswith("http-request set-var")]
    # The region matches of every shard come first, then the language-only ones (precedence).
    assert names[0] == "http-request set-var(txn.rule) str(eu-en-infer)"
    assert "use_backend shard-eu-en if { var(txn.rule) -m str eu-en-infer }" in lines


def test_no_share_rewrites_nothing() -> None:
    _, lines = _config({})
    assert not [line for line in lines if line.startswith("http-request set-path")]
