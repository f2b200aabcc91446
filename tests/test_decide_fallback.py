"""The ladder's last step: a bounded share of interactive requests to the smaller model, on a fake clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.test_decide_builders import T0, obs, policy
from voxscale.api import ScalerState, parse_spec
from voxscale.decide import Decision, Observation, Policy, decide
from voxscale.decide.fallback import REASON_SERVING, REASON_UNAVAILABLE, required_share
from voxscale.decide.types import FallbackPolicy

SMALL = FallbackPolicy("asr-small", capacity_rps=180.0, max_share=0.5, hold_seconds=60.0, step_down=0.1)
"""Three times the main model's 60 req/s per replica: a moved request costs a third of one."""


def capped(max_replicas: int = 4, **overrides: object) -> Policy:
    """60 req/s per replica at utilisation 1 (4 replicas hold exactly 240 req/s), ticks of 10 s."""
    return policy(60.0, **{"max_replicas": max_replicas, "fallback": SMALL, "forecast_enabled": False,
                           **overrides})


def tick(rate: float | None, *, ready: int = 4, pending: int = 0, loaded: bool | None = True,
         at: float = T0) -> Observation:
    return replace(obs(rate, ready=ready, pending=pending, at=at), fallback_loaded=loaded)


def timeline(p: Policy, steps: list[tuple[float | None, int, int]], state: ScalerState | None = None,
             ) -> list[Decision]:
    """(rate, ready, pending) every 10 s from T0; each decision feeds the next tick's state."""
    state = state or ScalerState()
    out = []
    for i, (rate, ready, pending) in enumerate(steps):
        d = decide(tick(rate, ready=ready, pending=pending, at=T0 + 10 * i), None, p, state, T0 + 10 * i)
        out.append(d)
        state = d.state
    return out


def shares(decisions: list[Decision]) -> list[float | None]:
    return [d.fallback_share for d in decisions]


def test_demand_above_max_replicas_moves_the_share_that_fits_the_ready_capacity() -> None:
    # 300 req/s on 4 Ready replicas holding 240: (300 - 240) / (300 x (1 - 60/180)) = 0.30.
    [d] = timeline(capped(), [(300.0, 4, 0)])
    assert d.replicas == 4
    assert d.fallback_share == pytest.approx(0.30)
    assert d.state.fallback_share == pytest.approx(0.30)
    assert [reason for reason, _ in d.fallback_problems] == [REASON_SERVING]
    assert "30% of new interactive requests go to the smaller model asr-small" in d.fallback_problems[0][1]
    assert any(line.startswith("fallback: asr-small share 0% → 30%") for line in d.reasons)


def test_pending_pods_start_it_below_max_replicas() -> None:
    [d] = timeline(capped(max_replicas=50), [(300.0, 4, 2)])
    assert d.fallback_share == pytest.approx(0.30)
    assert "2 pod(s) Pending" in d.fallback_problems[0][1]


def test_a_shard_that_can_still_grow_scales_instead_of_degrading() -> None:
    [d] = timeline(capped(max_replicas=50), [(300.0, 4, 0)])
    assert d.replicas > 4
    assert d.fallback_share == 0.0
    assert d.fallback_problems == ()


def test_the_share_never_exceeds_max_share() -> None:
    # 1,000 req/s on 240 would need (1000 - 240) / 667 = 114 %: bounded at maxShare 50 %.
    assert required_share(1000.0, 4, capped(), SMALL) > 1
    decisions = timeline(capped(), [(1000.0, 4, 0)] * 3)
    assert shares(decisions) == [0.5, 0.5, 0.5]
    assert "needs more than maxShare" in decisions[0].fallback_problems[0][1]


def test_steady_overload_keeps_the_share_and_rounds_it_up_to_five_percent() -> None:
    # 290 req/s: (290 - 240) / (290 x 2/3) = 25.9 % -> 30 %, the same every tick.
    assert shares(timeline(capped(), [(290.0, 4, 0)] * 6)) == [0.3] * 6


def test_the_share_rises_at_once_when_demand_rises() -> None:
    # 270 req/s: 30 / 180 = 16.7 % -> 20 %; 330: 90 / 220 = 41 % -> 45 %.
    assert shares(timeline(capped(), [(270.0, 4, 0), (300.0, 4, 0), (330.0, 4, 0)])) == [0.2, 0.3, 0.45]


def test_exit_waits_for_the_hold_then_steps_down_a_tick_at_a_time() -> None:
    # Entry at 30 %; then the Pending pods are Ready (6 hold 360 > 300): the share stays for the
    # 60 s hold (ticks 1..6), then falls 10 % a tick: 20, 10, 0.
    steps = [(300.0, 4, 2)] + [(300.0, 6, 0)] * 10
    decisions = timeline(capped(max_replicas=50), steps)
    assert shares(decisions) == [0.3] * 7 + [0.2, 0.1, 0.0, 0.0]
    assert decisions[9].fallback_problems == ()
    assert any("holding 30% (50 of 60 s)" in line for line in decisions[6].reasons)
    assert any("lowering by at most 10% a tick after the 60 s hold" in line for line in decisions[7].reasons)


def test_pods_that_turn_from_pending_to_warming_do_not_end_it() -> None:
    # No longer Pending but not Ready either: the Ready capacity still needs the share.
    decisions = timeline(capped(max_replicas=50), [(300.0, 4, 2)] + [(300.0, 4, 0)] * 9)
    assert shares(decisions) == [0.3] * 10


def test_a_relapse_during_the_hold_restarts_it() -> None:
    steps = [(300.0, 4, 2)] + [(300.0, 6, 0)] * 4 + [(300.0, 4, 2)] + [(300.0, 6, 0)] * 7
    out = shares(timeline(capped(max_replicas=50), steps))
    assert out[:12] == [0.3] * 12
    assert out[12] == pytest.approx(0.2)


def test_no_data_changes_nothing() -> None:
    before = timeline(capped(), [(300.0, 4, 0)])[-1].state
    during = timeline(capped(), [(None, 4, 0)] * 8, state=before)
    assert shares(during) == [0.3] * 8
    assert all(d.mode in ("hold", "fallback") for d in during)
    assert all(d.fallback_problems[0][0] == REASON_SERVING for d in during)
    assert during[-1].state.fallback_share == pytest.approx(0.3)


def test_a_fallback_model_that_is_not_loaded_disables_the_step_and_says_so() -> None:
    state = timeline(capped(), [(300.0, 4, 0)])[-1].state
    d = decide(tick(300.0, loaded=False), None, capped(), state, T0 + 10)
    assert d.fallback_share == 0.0
    assert d.state.fallback_share == 0.0
    assert [reason for reason, _ in d.fallback_problems] == [REASON_UNAVAILABLE]
    assert "asr-small is not loaded" in d.fallback_problems[0][1]


def test_an_unknown_load_state_does_not_disable_it() -> None:
    [d] = [decide(tick(300.0, loaded=None), None, capped(), ScalerState(), T0)]
    assert d.fallback_share == pytest.approx(0.3)


def test_a_smaller_model_that_is_no_faster_is_never_used() -> None:
    slow = replace(SMALL, capacity_rps=50.0)
    [d] = timeline(capped(fallback=slow), [(300.0, 4, 0)])
    assert d.fallback_share == 0.0


def test_without_a_fallback_model_nothing_is_decided() -> None:
    d = decide(tick(300.0), None, capped(fallback=None), ScalerState(), T0)
    assert (d.fallback_share, d.fallback_problems) == (None, ())


def test_the_policy_takes_the_smaller_models_capacity_from_its_service_time() -> None:
    spec = parse_spec({
        "model": {"name": "asr", "fallback": {
            "name": "asr-small", "maxShare": 0.4, "serviceTime": {"batchFixedMs": 15, "perRequestMs": 2}}},
        "capacity": {"serviceTime": {"batchFixedMs": 50, "perRequestMs": 6}},
        "shards": [{"name": "eu", "region": "eu", "languages": ["en"]}],
    })
    p = Policy.from_spec(spec, "eu")
    assert p.fallback is not None
    assert (p.fallback.model, p.fallback.max_share) == ("asr-small", 0.4)
    assert p.fallback.capacity_rps > 2 * p.capacity_rps
