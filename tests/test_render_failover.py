"""Regional failover is pure: which shards cannot serve, where each of their languages goes, the
hold before going home, a language with nowhere to go kept home, and the route that follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers import spec_with
from voxscale import names
from voxscale.api import FailoverStatus, RoutingStatus, ShardStatus, SpeechClusterSpec
from voxscale.render import Owner
from voxscale.render.failover import (
    FAILBACK_HOLD_SECONDS,
    FailoverVerdict,
    carried_failovers,
    failback_hold_seconds,
    failover_events,
    failover_verdict,
)
from voxscale.render.routes import plan_route
from voxscale.render.status import failover_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OWNER = Owner(name="asr", namespace="speech", uid="u-1")
# Two regions: en in both, de in both, es only in us.
SHARDS = [
    {"name": "eu-en", "region": "eu-west", "languages": ["en"]},
    {"name": "eu-de", "region": "eu-west", "languages": ["de"], "maxReplicas": 10},
    {"name": "us-en-es", "region": "us-east", "languages": ["en", "es"]},
    {"name": "ap-de", "region": "ap-south", "languages": ["de"], "maxReplicas": 10},
    {"name": "ap-de-en", "region": "ap-south", "languages": ["de", "en"]},
]


def _spec(regions_down: tuple[str, ...] = (),
          shards: list[dict[str, Any]] | None = None) -> SpeechClusterSpec:
    routing = {"parentRefs": [{"name": "gw"}], "regionsDown": list(regions_down)}
    return spec_with(routing=routing, shards=shards if shards is not None else SHARDS[:3])


def _st(name: str, ready: int = 2, replicas: int = 2, pending: int = 0, warming: int = 0) -> ShardStatus:
    return ShardStatus(name=name, ready_replicas=ready, replicas=replicas, pending_replicas=pending,
                       warming_replicas=warming)


ALL = frozenset(s["name"] for s in SHARDS)
"""Every shard seen Ready before: 0 Ready is an outage, not a start."""


def _verdict(spec: SpeechClusterSpec, shards: list[ShardStatus], previous: Any, now: datetime,
             established: frozenset[str] = ALL) -> FailoverVerdict:
    return failover_verdict(spec, shards, previous, now, established=established)


HEALTHY = [_st("eu-en"), _st("eu-de"), _st("us-en-es")]


def _with(*changed: ShardStatus, base: list[ShardStatus] = HEALTHY) -> list[ShardStatus]:
    by_name = {s.name: s for s in base}
    by_name.update({s.name: s for s in changed})
    return list(by_name.values())


def _away(failovers: tuple[FailoverStatus, ...] | list[FailoverStatus]) -> dict[tuple[str, str], str | None]:
    return {(f.from_shard, lang): f.to for f in failovers for lang in f.languages}


@dataclass(frozen=True)
class Case:
    name: str
    shards: list[ShardStatus]
    expect: dict[tuple[str, str], str | None]
    regions_down: tuple[str, ...] = ()
    spec_shards: list[dict[str, Any]] = field(default_factory=lambda: SHARDS[:3])
    established: frozenset[str] = ALL


CASES = [
    Case("every shard Ready: no failover", HEALTHY, {}),
    Case("eu-en with 0 Ready of 2 (Pending on GPUs): en goes to us", _with(_st("eu-en", 0, 2, pending=2)),
         {("eu-en", "en"): "us-en-es"}),
    Case("eu-en with 0 Ready, pods still warming: it cannot serve yet either",
         _with(_st("eu-en", 0, 2, warming=2)), {("eu-en", "en"): "us-en-es"}),
    Case("eu-en with 1 Ready and 1 Pending still serves", _with(_st("eu-en", 1, 2, pending=1)), {}),
    Case("a shard at 0 by its own minReplicas is not an outage", _with(_st("eu-en", 0, 0)), {}),
    Case("a starting shard (first pods warming, never Ready) is not down",
         _with(_st("eu-en", 0, 2, warming=2)), {}, established=frozenset({"eu-de", "us-en-es"})),
    Case("a starting shard whose pods are Pending is: they are not coming",
         _with(_st("eu-en", 0, 2, pending=2)), {("eu-en", "en"): "us-en-es"}, established=frozenset()),
    Case("a shard not ticked yet is not judged", [_st("eu-de"), _st("us-en-es")], {}),
    Case("de has no shard elsewhere: kept home", _with(_st("eu-de", 0, 2, pending=2)),
         {("eu-de", "de"): None}),
    Case("region marked down: each language to its other region, or kept home", HEALTHY,
         {("eu-en", "en"): "us-en-es", ("eu-de", "de"): None}, regions_down=("eu-west",)),
    Case("both regions of en down: nowhere to go, both kept home",
         _with(_st("eu-en", 0, 2), _st("us-en-es", 0, 2)),
         {("eu-en", "en"): None, ("us-en-es", "en"): None, ("us-en-es", "es"): None}),
    Case("a receiver that is itself marked down is not one", HEALTHY,
         {("us-en-es", "en"): None, ("us-en-es", "es"): None, ("eu-en", "en"): None,
          ("eu-de", "de"): None}, regions_down=("eu-west", "us-east")),
    Case("each language of a shard picks its own receiver",
         [_st("eu-en"), _st("eu-de"), _st("us-en-es", 0, 3, pending=3), _st("ap-de"), _st("ap-de-en")],
         {("us-en-es", "en"): "ap-de-en", ("us-en-es", "es"): None}, spec_shards=SHARDS),
    Case("receiver: the most spare Ready replicas first",
         [_st("eu-en"), _st("eu-de", 0, 2), _st("us-en-es"), _st("ap-de", 2, 4), _st("ap-de-en", 3, 3)],
         {("eu-de", "de"): "ap-de-en"}, spec_shards=SHARDS),
    Case("receiver: equal spare, the most room below maxReplicas (ap-de-en's 40 over ap-de's 10)",
         [_st("eu-en"), _st("eu-de", 0, 2), _st("us-en-es"), _st("ap-de", 2, 2), _st("ap-de-en", 2, 2)],
         {("eu-de", "de"): "ap-de-en"}, spec_shards=SHARDS),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_verdict_sends_each_language_of_a_shard_that_cannot_serve_to_a_healthy_region(case: Case) -> None:
    verdict = _verdict(_spec(case.regions_down, case.spec_shards), case.shards, [], T0, case.established)
    assert _away(verdict.failovers) == case.expect
    assert verdict.moves == {k: v for k, v in case.expect.items() if v is not None}
    assert all(f.since == T0 and f.reason for f in verdict.failovers)


def test_the_reason_says_why_the_shard_cannot_serve() -> None:
    [pending] = _verdict(_spec(), _with(_st("eu-en", 0, 2, pending=2)), [], T0).failovers
    assert pending.reason == "0 of 2 replicas Ready (2 Pending)"
    [down, _] = _verdict(_spec(("eu-west",)), HEALTHY, [], T0).failovers
    assert down.reason == "region eu-west is marked down in spec.routing.regionsDown"


def test_a_receiver_is_kept_while_it_serves_even_when_another_has_more_spare() -> None:
    spec = _spec(shards=SHARDS)
    first = _verdict(spec, [_st("eu-en"), _st("eu-de", 0, 2), _st("us-en-es"), _st("ap-de", 3, 3),
                                    _st("ap-de-en", 2, 3)], [], T0)
    assert first.moves == {("eu-de", "de"): "ap-de"}
    later = _verdict(spec, [_st("eu-en"), _st("eu-de", 0, 2), _st("us-en-es"), _st("ap-de", 1, 3),
                                    _st("ap-de-en", 5, 3)], first.failovers, T0 + timedelta(seconds=10))
    assert later.moves == {("eu-de", "de"): "ap-de"}
    assert [f.since for f in later.failovers] == [T0]
    gone = _verdict(spec, [_st("eu-en"), _st("eu-de", 0, 2), _st("us-en-es"), _st("ap-de", 0, 3),
                                   _st("ap-de-en", 5, 3)], later.failovers, T0 + timedelta(seconds=20))
    assert gone.moves == {("eu-de", "de"): "ap-de-en"}  # and ap-de's own de has nowhere to go
    assert [f.since for f in gone.failovers if f.from_shard == "eu-de"] == [T0]  # away since the first


def test_fail_back_waits_for_the_home_shard_to_serve_for_the_hold() -> None:
    """Timeline, 10 s ticks: eu-en down at 0 s, Ready again at 30 s, home at 30 + 20 s; a relapse
    during the hold restarts the clock."""
    spec = _spec()
    hold = failback_hold_seconds(spec)
    assert hold == FAILBACK_HOLD_SECONDS == 20  # 2 × 10 s ticks is not longer
    down, up = _with(_st("eu-en", 0, 2, pending=2)), HEALTHY
    timeline = [(0, down), (10, down), (20, down), (30, up), (40, down), (50, up), (60, up), (70, up)]
    away: list[FailoverStatus] = []
    seen = []
    for t, shards in timeline:
        away = list(_verdict(spec, shards, away, T0 + timedelta(seconds=t)).failovers)
        seen.append((t, bool(away), away[0].home_ready_since if away else None))
    at = {t: T0 + timedelta(seconds=t) for t in (30, 50)}
    assert seen == [(0, True, None), (10, True, None), (20, True, None), (30, True, at[30]),
                    (40, True, None), (50, True, at[50]), (60, True, at[50]), (70, False, None)]


def test_a_long_interval_holds_two_ticks() -> None:
    assert failback_hold_seconds(spec_with(scaling={"intervalSeconds": 30})) == 60


def test_a_home_shard_that_serves_again_comes_home_at_once_when_its_receiver_stopped() -> None:
    spec = _spec()
    [away] = _verdict(spec, _with(_st("eu-en", 0, 2)), [], T0).failovers
    verdict = _verdict(spec, _with(_st("us-en-es", 0, 2)), [away], T0 + timedelta(seconds=10))
    assert _away(verdict.failovers) == {("us-en-es", "en"): "eu-en", ("us-en-es", "es"): None}


def test_the_route_sends_the_failed_over_matches_to_the_receiving_shards_service() -> None:
    spec = _spec()
    assert spec.routing is not None
    verdict = _verdict(spec, _with(_st("eu-en", 0, 2)), [], T0)
    route = plan_route(OWNER, spec, spec.routing, verdict.moves).route
    assert route is not None
    table = {(h["x-language"], h.get("x-region")): (rule["name"], rule["backendRefs"][0]["name"])
             for rule in route["spec"]["rules"] for m in rule["matches"]
             for h in [{x["name"]: x["value"] for x in m["headers"]}]}
    assert table == {
        ("en", "eu-west"): ("us-en-es", "asr-us-en-es"), ("en", None): ("us-en-es", "asr-us-en-es"),
        ("de", "eu-west"): ("eu-de", "asr-eu-de"), ("de", None): ("eu-de", "asr-eu-de"),
        ("en", "us-east"): ("us-en-es", "asr-us-en-es"),
        ("es", "us-east"): ("us-en-es", "asr-us-en-es"), ("es", None): ("us-en-es", "asr-us-en-es"),
    }
    # eu-en has no rule: a rule without matches would match every request.
    assert [r["name"] for r in route["spec"]["rules"]] == ["eu-de", "us-en-es"]


def test_a_language_with_nowhere_to_go_keeps_its_home_rule() -> None:
    spec = _spec(("eu-west",))
    assert spec.routing is not None
    verdict = _verdict(spec, HEALTHY, [], T0)
    route = plan_route(OWNER, spec, spec.routing, verdict.moves).route
    assert route is not None
    [de] = [r for r in route["spec"]["rules"] if r["name"] == "eu-de"]
    assert [{h["name"]: h["value"] for h in m["headers"]} for m in de["matches"]] == [
        {"x-language": "de", "x-region": "eu-west"}, {"x-language": "de"}]


def test_without_failovers_the_route_is_as_before() -> None:
    spec = _spec()
    assert spec.routing is not None
    assert plan_route(OWNER, spec, spec.routing, {}) == plan_route(OWNER, spec, spec.routing)


def test_events_say_each_failover_each_fail_back_and_each_language_with_nowhere_to_go() -> None:
    spec = _spec(("eu-west",))
    away = list(_verdict(spec, HEALTHY, [], T0).failovers)
    assert failover_events([], away, spec) == [
        ("Warning", names.REASON_FAILED_OVER,
         "eu-en (eu-west) cannot serve (region eu-west is marked down in spec.routing.regionsDown): new"
         " streams for en go to us-en-es (us-east); open streams stay where they are"),
        ("Warning", names.REASON_FAILOVER_IMPOSSIBLE,
         "eu-de (eu-west) cannot serve (region eu-west is marked down in spec.routing.regionsDown) and no"
         " healthy shard of another region serves de: the route keeps sending them to eu-de"),
    ]
    assert failover_events(away, away, spec) == []
    holding = [f.model_copy(update={"home_ready_since": T0}) for f in away]
    assert failover_events(away, holding, spec) == []  # only the hold's clock moved
    assert failover_events(holding, [], spec) == [
        ("Normal", names.REASON_FAILED_BACK,
         "eu-en serves again: new streams for en go home from us-en-es; open streams stay on"
         " us-en-es until they end")]


def test_the_failed_over_condition_names_each_failover_and_the_worst_first() -> None:
    def routing(*failovers: FailoverStatus) -> RoutingStatus:
        return RoutingStatus(kind="GRPCRoute", name="asr", routed=True, reason="RoutesApplied",
                             failovers=list(failovers))

    moved = FailoverStatus(from_shard="eu-en", to="us-en-es", languages=["en"],
                           reason="0 of 2 replicas Ready", since=T0)
    stuck = FailoverStatus(from_shard="eu-de", languages=["de"], reason="0 of 2 replicas Ready", since=T0)
    home = (False, names.REASON_AT_HOME, "every shard serves its own languages")
    assert failover_condition(routing()) == home
    assert failover_condition(routing(moved)) == (
        True, names.REASON_FAILED_OVER,
        "en of eu-en -> us-en-es since 2026-01-01T00:00:00+00:00 (0 of 2 replicas Ready)")
    ok, reason, message = failover_condition(routing(moved, stuck))
    assert (ok, reason) == (True, names.REASON_FAILOVER_IMPOSSIBLE)
    assert message.endswith("de of eu-de: no healthy shard of another region serves it (0 of 2 replicas"
                            " Ready); routed home still")


def test_a_shard_already_failed_over_stays_judged_while_its_pods_warm() -> None:
    spec = _spec()
    away = _verdict(spec, _with(_st("eu-en", 0, 2, pending=2)), [], T0).failovers
    warming = _with(_st("eu-en", 0, 2, warming=2))
    later = _verdict(spec, warming, away, T0 + timedelta(seconds=10), established=frozenset())
    assert later.moves == {("eu-en", "en"): "us-en-es"}


def test_a_reconcile_keeps_the_failovers_the_spec_still_allows() -> None:
    away = _verdict(_spec(), _with(_st("eu-en", 0, 2)), [], T0).failovers
    assert carried_failovers(_spec(), away) == away
    moved = [{**SHARDS[0]}, SHARDS[1], {**SHARDS[2], "languages": ["es"]}]
    assert carried_failovers(_spec(shards=moved), away) == ()  # us-en-es no longer serves en
    assert carried_failovers(_spec(shards=SHARDS[1:3]), away) == ()  # eu-en left the spec
