"""The front door's route is pure: spec.routing's model, the golden GRPCRoute, one match per language
to its shard's Service, session persistence on every rule, and bad input found before it is sent."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tests.helpers import ROOT, example_doc, spec_with
from voxscale import names
from voxscale.api import SpeechClusterSpec
from voxscale.cli import main
from voxscale.render import Owner, render_service
from voxscale.render.routes import MAX_MATCHES, MAX_RULES, plan_route, render_route

GOLDEN = ROOT / "tests" / "golden" / "routes.yaml"
OWNER = Owner(name="asr", namespace="speech", uid="00000000-0000-0000-0000-000000000001")
GATEWAY = {"parentRefs": [{"name": "speech-gateway", "namespace": "gateways", "sectionName": "grpc"}]}


def _shard(name: str, region: str, *languages: str) -> dict[str, Any]:
    return {"name": name, "region": region, "languages": list(languages)}


def _spec(routing: dict[str, Any] | None = None,
          shards: list[dict[str, Any]] | None = None) -> SpeechClusterSpec:
    changes: dict[str, Any] = {"routing": {**GATEWAY, **(routing or {})}}
    if shards is not None:
        changes["shards"] = shards
    return spec_with(**changes)


def _route(spec: SpeechClusterSpec) -> dict[str, Any]:
    assert spec.routing is not None
    return render_route(OWNER, spec, spec.routing)


def _table(route: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    """(language, region or None) -> "<service>:<port>" the route sends that caller to."""
    out = {}
    for rule in route["spec"]["rules"]:
        [backend] = rule["backendRefs"]
        for match in rule["matches"]:
            headers = {h["name"]: h["value"] for h in match["headers"]}
            out[(headers["x-language"], headers.get("x-region"))] = f"{backend['name']}:{backend['port']}"
    return out


# ------------------------------------------------------------------------------------ the spec


def test_routing_is_off_unless_set_and_defaults_to_grpc_header_sessions() -> None:
    assert spec_with().routing is None
    routing = _spec().routing
    assert routing is not None
    headers = (routing.language_header, routing.region_header)
    assert (routing.protocol, headers) == ("grpc", ("x-language", "x-region"))
    assert (routing.session.type, routing.session.name, routing.session.absolute_timeout) == (
        "Header", "x-voxscale-session", None)
    assert routing.languages == []


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ({"parentRefs": []}, "at least 1 item"),
        ({"languageHeader": "X-Region"}, "languageHeader and regionHeader are both"),
        ({"languageHeader": "x language"}, "should match pattern"),
        ({"session": {"absoluteTimeout": "1d"}}, "should match pattern"),
        ({"session": {"type": "Sticky"}}, "'Header' or 'Cookie'"),
        ({"protocol": "websocket"}, "'grpc' or 'http'"),
        ({"languages": ["English"]}, "should match pattern"),
    ],
    ids=["no-gateway", "same-headers", "bad-header", "day-timeout", "bad-session-type", "bad-protocol",
         "bad-language"],
)
def test_bad_routing_is_rejected_with_a_message_naming_the_problem(
    routing: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _spec(routing)


# ------------------------------------------------------------------------------------ the route


def test_example_with_routing_renders_to_the_golden_route() -> None:
    rendered = yaml.safe_dump(_route(_spec()), sort_keys=False)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(rendered)
    assert rendered == GOLDEN.read_text(), "golden route changed: rerun with UPDATE_GOLDEN=1, review the diff"


def test_each_language_reaches_its_regions_shard_and_without_a_region_the_first_shard_serving_it() -> None:
    # The example: eu-en (eu-west: en), eu-de-fr (eu-west: de, fr), us-en-es (us-east: en, es).
    assert _table(_route(_spec())) == {
        ("en", "eu-west"): "asr-eu-en:8001",
        ("en", None): "asr-eu-en:8001",
        ("de", "eu-west"): "asr-eu-de-fr:8001",
        ("de", None): "asr-eu-de-fr:8001",
        ("fr", "eu-west"): "asr-eu-de-fr:8001",
        ("fr", None): "asr-eu-de-fr:8001",
        ("en", "us-east"): "asr-us-en-es:8001",
        ("es", "us-east"): "asr-us-en-es:8001",
        ("es", None): "asr-us-en-es:8001",
    }


def test_a_region_match_outranks_the_language_only_match_by_its_extra_header() -> None:
    # Gateway API precedence: among matching rules, the most header matches wins. A caller
    # sending en + us-east matches eu-en's language-only match (1 header) and us-en-es's (2).
    route = _route(_spec())
    counts = {len(m["headers"]) for rule in route["spec"]["rules"] for m in rule["matches"]}
    assert counts == {1, 2}


@pytest.mark.parametrize(("protocol", "kind", "port_name"), [
    ("grpc", "GRPCRoute", names.PORT_NAME_GRPC), ("http", "HTTPRoute", names.PORT_NAME_HTTP)])
def test_the_route_kind_and_backend_port_follow_the_protocol(
    protocol: str, kind: str, port_name: str
) -> None:
    spec = _spec({"protocol": protocol})
    route = _route(spec)
    assert (route["apiVersion"], route["kind"]) == (names.GATEWAY_API_VERSION, kind)
    for shard, rule in zip(spec.shards, route["spec"]["rules"], strict=True):
        service = render_service(OWNER, spec, shard)
        port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == port_name)
        assert rule["backendRefs"] == [{"name": service["metadata"]["name"], "port": port}]


def test_every_rule_keeps_a_session_on_one_worker() -> None:
    spec = _spec({"session": {"type": "Cookie", "name": "voxscale-session", "absoluteTimeout": "2h"}})
    for rule in _route(spec)["spec"]["rules"]:
        assert rule["sessionPersistence"] == {
            "type": "Cookie", "sessionName": "voxscale-session", "absoluteTimeout": "2h"}


def test_the_route_is_named_after_and_owned_by_the_speechcluster() -> None:
    route = _route(_spec())
    assert route["metadata"]["name"] == names.route_name("asr") == "asr"
    assert route["metadata"]["ownerReferences"] == [OWNER.reference()]
    assert route["metadata"]["labels"][names.LABEL_COMPONENT] == names.COMPONENT_ROUTING
    assert names.LABEL_SHARD not in route["metadata"]["labels"]  # never taken for a shard's child
    assert [r["name"] for r in route["spec"]["rules"]] == ["eu-en", "eu-de-fr", "us-en-es"]
    assert route["spec"]["parentRefs"] == GATEWAY["parentRefs"]


# ------------------------------------------------------------------------------------ bad input


def test_a_good_spec_has_no_problems_and_a_summary_naming_what_is_routed() -> None:
    spec = _spec()
    assert spec.routing is not None
    plan = plan_route(OWNER, spec, spec.routing)
    assert plan.route is not None and plan.problems == ()
    assert plan.summary == ("GRPCRoute asr routes 4 languages (de, en, es, fr) to 3 shards;"
                            " sessions stick by header x-voxscale-session")


def test_a_language_served_by_two_shards_of_one_region_is_a_conflict_and_nothing_is_applied() -> None:
    shards = [_shard("eu-en", "eu-west", "en"), _shard("eu-en-2", "eu-west", "en", "de"),
              _shard("us-en", "us-east", "en")]
    spec = _spec(shards=shards)
    assert spec.routing is not None
    plan = plan_route(OWNER, spec, spec.routing)
    assert plan.route is None
    [(reason, message)] = plan.problems
    assert reason == names.REASON_ROUTING_CONFLICT
    assert message.startswith("language en in region eu-west is served by shards eu-en and eu-en-2:")
    assert "left as it was" in message


def test_a_listed_language_no_shard_serves_is_reported_and_the_others_are_still_routed() -> None:
    spec = _spec({"languages": ["en", "ja", "ko"]})
    assert spec.routing is not None
    plan = plan_route(OWNER, spec, spec.routing)
    assert plan.route is not None
    [(reason, message)] = plan.problems
    assert reason == names.REASON_LANGUAGE_UNSERVED
    assert "lists ja, ko, which no shard serves" in message


@pytest.mark.parametrize(("shards", "says"), [
    ([_shard(f"s{i}", "eu-west", f"l{chr(97 + i)}") for i in range(MAX_RULES + 1)],
     f"17 shards need 17 rules; Gateway API allows {MAX_RULES} per route"),
    ([_shard(f"s{i}", "eu-west", *(f"{chr(97 + i)}{chr(97 + j)}" for j in range(8))) for i in range(9)],
     f"need 144 header matches; Gateway API allows {MAX_MATCHES} per route"),
], ids=["too-many-shards", "too-many-languages"])
def test_a_route_over_gateway_apis_limits_is_reported_and_not_sent(
    shards: list[dict[str, Any]], says: str
) -> None:
    spec = _spec(shards=shards)
    assert spec.routing is not None
    plan = plan_route(OWNER, spec, spec.routing)
    assert plan.route is None
    [(reason, message)] = plan.problems
    assert reason == names.REASON_ROUTE_REJECTED and says in message


def test_the_example_manifest_itself_has_no_routing() -> None:
    # Routing needs the Gateway API CRDs: the quick-start example must work without them.
    assert "routing" not in example_doc()["spec"]


def test_voxscale_render_prints_the_route_after_the_shards_and_its_problems_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = example_doc()
    doc["spec"]["routing"] = {**GATEWAY, "languages": ["en", "ja"]}
    manifest = tmp_path / "asr.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    assert main(["render", str(manifest)]) == 0
    out, err = capsys.readouterr()
    kinds = [d["kind"] for d in yaml.safe_load_all(out)]
    assert kinds == ["ConfigMap", "Service", "PodDisruptionBudget", "Deployment"] * 3 + ["GRPCRoute"]
    assert err.startswith(f"{names.REASON_LANGUAGE_UNSERVED}: spec.routing.languages lists ja")
