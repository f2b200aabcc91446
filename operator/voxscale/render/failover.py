"""Regional failover (pure): which shards cannot serve, and which shard of another region takes
each of their languages' new streams, with a hold before a language goes home.

A shard cannot serve when its region is in spec.routing.regionsDown, or when the last tick saw
none of its replicas Ready while it wants some (its pods Pending on exhausted GPUs, crashed,
or its nodes gone). A shard not ticked yet is not judged: no evidence is not an outage. A shard
with some Ready replicas and others Pending still serves (with less capacity): moving every new
stream of its languages away would overload the other region to relieve a partial shortage.

Going home waits FAILBACK_HOLD_SECONDS (at least two ticks) of the home shard serving again: a
worker that passes readiness and then dies loading the model (OOM on the first batch, the
first CrashLoopBackOff restart is 10 s later) is Ready for seconds, and sending the language
back to it would fail those callers twice. 20 s covers that restart plus a 10 s readiness period.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from voxscale import names
from voxscale.api import FailoverStatus, ShardSpec, ShardStatus, SpeechClusterSpec

FAILBACK_HOLD_SECONDS = 20.0

Moves = Mapping[tuple[str, str], str]
"""(home shard, language) -> the shard that takes that language's new streams instead."""


@dataclass(frozen=True)
class FailoverVerdict:
    failovers: tuple[FailoverStatus, ...]
    """Active failovers, by home shard in spec order; `to` None: nowhere to go (home route kept)."""

    @property
    def moves(self) -> dict[tuple[str, str], str]:
        return moves_of(self.failovers)


def moves_of(failovers: Sequence[FailoverStatus]) -> dict[tuple[str, str], str]:
    """The route's view of failovers: which (home shard, language) goes where."""
    return {(f.from_shard, language): f.to for f in failovers if f.to for language in f.languages}


def failback_hold_seconds(spec: SpeechClusterSpec) -> float:
    """At least FAILBACK_HOLD_SECONDS, and never under two ticks (a 30 s interval holds 60 s)."""
    return max(FAILBACK_HOLD_SECONDS, 2.0 * spec.scaling.interval_seconds)


def cannot_serve(
    shard: ShardSpec, status: ShardStatus | None, down: Collection[str], *, established: bool = True
) -> str | None:
    """Why `shard` cannot take streams now; None when it can (or nothing says it cannot).

    `established`: it has had Ready replicas before (or is failed over already). A shard whose
    first pods are still warming is starting, not down: judging it would fail every new cluster's
    slower region over to the faster one for a warm-up and a hold, with an Event each way.
    Pending pods are not coming, so they count whether or not it is established.
    """
    if shard.region in down:
        return f"region {shard.region} is marked down in spec.routing.regionsDown"
    if status is None or status.ready_replicas > 0:
        return None
    if status.replicas == 0 and status.pending_replicas == 0:
        return None  # scaled to zero by its own minReplicas: it starts on demand, not an outage
    if status.pending_replicas == 0 and not established:
        return None
    waiting = [f"{n} {what}" for n, what in ((status.pending_replicas, "Pending"),
                                              (status.warming_replicas, "warming")) if n]
    return f"0 of {status.replicas} replicas Ready" + (f" ({', '.join(waiting)})" if waiting else "")


def carried_failovers(
    spec: SpeechClusterSpec, previous: Sequence[FailoverStatus]
) -> tuple[FailoverStatus, ...]:
    """The failovers in force that the spec still allows (shards and languages still there, the
    receiver in another region): what a reconcile keeps. Only the daemon judges health, from
    the tick's fresh view, so a re-apply never undoes or starts a failover."""
    shards = {s.name: s for s in spec.shards}
    out = []
    for f in previous:
        home, to = shards.get(f.from_shard), shards.get(f.to) if f.to else None
        if home is None or (f.to is not None and (to is None or to.region == home.region)):
            continue
        languages = [lang for lang in f.languages
                     if lang in home.languages and (to is None or lang in to.languages)]
        if languages:
            out.append(f.model_copy(update={"languages": languages}))
    return tuple(out)


@dataclass(frozen=True)
class _Fleet:
    """The shards as the last tick saw them, and the regions marked down."""

    spec: SpeechClusterSpec
    status: Mapping[str, ShardStatus]
    down: Collection[str]
    established: Collection[str]

    def why_not(self, shard: ShardSpec) -> str | None:
        return cannot_serve(shard, self.status.get(shard.name), self.down,
                            established=shard.name in self.established)

    def can_receive(self, shard: ShardSpec) -> bool:
        st = self.status.get(shard.name)
        return st is not None and st.ready_replicas > 0 and self.why_not(shard) is None

    def receiver(self, home: ShardSpec, language: str, previous: str | None) -> str | None:
        """The healthy shard of another region serving `language`: the one already taking it if
        it still can (no flapping between receivers), else the most spare Ready replicas beyond
        its own need, then the most room below maxReplicas (it must scale for the extra load),
        then name."""
        candidates = [s for s in self.spec.shards if s.region != home.region
                      and language in s.languages and self.can_receive(s)]
        if previous in {s.name for s in candidates}:
            return previous

        def key(s: ShardSpec) -> tuple[int, int, str]:
            st = self.status[s.name]
            return (st.replicas - st.ready_replicas, st.replicas - self.spec.bounds(s)[1], s.name)

        return min(candidates, key=key).name if candidates else None

    def holding(self, shard: ShardSpec, mine: list[FailoverStatus], now: datetime) -> list[FailoverStatus]:
        """A home shard that serves again: its failovers stay until it has for the hold; one
        whose receiver stopped serving (or that had nowhere to go) comes home at once."""
        shards = {s.name: s for s in self.spec.shards}
        kept = [f for f in mine if f.to in shards and self.can_receive(shards[f.to])]
        if not kept:
            return []
        ready_since = next((f.home_ready_since for f in kept if f.home_ready_since), now)
        if (now - ready_since).total_seconds() >= failback_hold_seconds(self.spec):
            return []
        languages = set(shard.languages)
        return [f.model_copy(update={"home_ready_since": ready_since,
                                     "languages": [lang for lang in f.languages if lang in languages]})
                for f in kept if languages & set(f.languages)]


def failover_verdict(
    spec: SpeechClusterSpec, shards: Sequence[ShardStatus], previous: Sequence[FailoverStatus],
    now: datetime, *, established: Collection[str] = frozenset(),
) -> FailoverVerdict:
    """Failovers given each shard's last tick, the failovers in force before (status.routing) and
    the shards seen Ready before (`established`; see cannot_serve)."""
    fleet = _Fleet(spec, {s.name: s for s in shards},
                   set(spec.routing.regions_down) if spec.routing else set(),
                   {*established, *(f.from_shard for f in previous)})
    before = {(f.from_shard, language): f for f in previous for language in f.languages}
    out: list[FailoverStatus] = []
    for shard in spec.shards:
        why = fleet.why_not(shard)
        if why is None:
            out.extend(fleet.holding(shard, [f for f in previous if f.from_shard == shard.name], now))
            continue
        targets: dict[str | None, list[str]] = {}
        for language in shard.languages:
            was = before.get((shard.name, language))
            targets.setdefault(fleet.receiver(shard, language, was.to if was else None), []).append(language)
        for to, languages in targets.items():
            since = min((before[(shard.name, lang)].since for lang in languages
                         if (shard.name, lang) in before), default=now)
            out.append(FailoverStatus(from_shard=shard.name, to=to, languages=languages, reason=why,
                                      since=since))
    return FailoverVerdict(tuple(out))


def failover_events(
    previous: Sequence[FailoverStatus], current: Sequence[FailoverStatus], spec: SpeechClusterSpec
) -> list[tuple[str, str, str]]:
    """(type, reason, message) for each change: a language failed over, came home, or has
    nowhere to go. Nothing when only a hold's clock moved."""
    region = {s.name: s.region for s in spec.shards}
    old, new = _by_language(previous), _by_language(current)
    out = []
    for (home, to), languages in _grouped(new, old).items():
        where = f" ({region.get(home, '?')})"
        why = next(f.reason for f in current if f.from_shard == home)
        langs = ", ".join(languages)
        if to is None:
            out.append(("Warning", names.REASON_FAILOVER_IMPOSSIBLE,
                        f"{home}{where} cannot serve ({why}) and no healthy shard of another region"
                        f" serves {langs}: the route keeps sending them to {home}"))
        else:
            out.append(("Warning", names.REASON_FAILED_OVER,
                        f"{home}{where} cannot serve ({why}): new streams for {langs} go to {to}"
                        f" ({region.get(to, '?')}); open streams stay where they are"))
    gone = {key: to for key, to in old.items() if key not in new}
    for (home, to), languages in _grouped(gone, {}).items():
        if to is not None:
            out.append(("Normal", names.REASON_FAILED_BACK,
                        f"{home} serves again: new streams for {', '.join(languages)} go home"
                        f" from {to}; open streams stay on {to} until they end"))
    return out


def _by_language(failovers: Sequence[FailoverStatus]) -> dict[tuple[str, str], str | None]:
    return {(f.from_shard, language): f.to for f in failovers for language in f.languages}


def _grouped(
    these: Mapping[tuple[str, str], str | None], other: Mapping[tuple[str, str], str | None]
) -> dict[tuple[str, str | None], list[str]]:
    """(home, to) -> languages in `these` whose destination differs from `other`'s."""
    out: dict[tuple[str, str | None], list[str]] = {}
    for (home, language), to in these.items():
        if (home, language) not in other or other[(home, language)] != to:
            out.setdefault((home, to), []).append(language)
    return out
