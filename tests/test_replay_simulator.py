"""The replay simulator against closed-form cases: no-wait steady state, warm-up gaps, M/D/c queues."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voxscale.series import History
from voxscale_lab.capacity import CapacityProfile, load_profile
from voxscale_lab.replay.report import score
from voxscale_lab.replay.simulator import SimConfig, simulate
from voxscale_lab.replay.view import View, _dense_quantile, mixture_quantile, mixture_quantile_rows
from voxscale_lab.replay.workload import Workload

# 100 ms per request, one at a time: 10 req/s per replica, p95 latency 195 ms with no queue.
SIMPLE = CapacityProfile(a_seconds=0.1, c_seconds=0.0, max_batch=1, slo_ms=500, percentile=0.95)
# 1 s per request: M/D/c with D = 1 s and c = replicas.
UNIT = CapacityProfile(a_seconds=1.0, c_seconds=0.0, max_batch=1, slo_ms=5000, percentile=0.95)


def workload(arrivals: np.ndarray, name: str = "synthetic") -> Workload:
    arr = np.asarray(arrivals, dtype=np.float64)
    return Workload(name, 1_700_000_000.0, arr, arr.copy(), History.of(0, 60, []))


class Fixed:
    """A policy that asks for `replicas`, optionally changing to `then` at index `at`."""

    name = "fixed"
    interval_seconds = 1.0

    def __init__(self, replicas: int, then: int | None = None, at: int = 0) -> None:
        self.replicas, self.then, self.at = replicas, then, at

    def step(self, now: float, view: View) -> int:
        if self.then is not None and view.now_index >= self.at:
            return self.then
        return self.replicas


def test_constant_load_below_capacity_never_waits() -> None:
    run = simulate(Fixed(5), workload(np.full(600, 40.0)), SimConfig(SIMPLE, 120, initial_replicas=5))
    assert run.backlog.max() == 0.0
    # No wait: latency is the service time alone, uniform on [100, 200] ms.
    assert np.allclose(run.lo_ms, 100.0)
    assert np.allclose(run.width_ms, 100.0)
    assert score(run, 500, 0.95).violation_minutes_pct == 0.0


def test_a_step_violates_exactly_during_the_warm_up_gap() -> None:
    # 20 req/s on 2 replicas (full, no queue), then 30 req/s from t = 600; the policy asks for
    # 100 replicas at 600, which serve from 600 + W = 720 and drain the 1,200 backlog in 2 s
    # (1,000 req/s of capacity): only the two warm-up minutes 10 and 11 break the SLO.
    arrivals = np.concatenate([np.full(600, 20.0), np.full(600, 30.0)])
    run = simulate(Fixed(2, then=100, at=600), workload(arrivals),
                   SimConfig(SIMPLE, 120, max_replicas=100, initial_replicas=2))
    minutes = run.minute_latency_ms(0.95)
    bad = np.flatnonzero(minutes > 500)
    assert bad.tolist() == [10, 11]
    assert run.backlog[719] == pytest.approx(1200.0)
    assert run.backlog[720] == pytest.approx(230.0)
    assert run.backlog[721] == 0.0
    assert run.ready[719] == 2 and run.ready[720] == 100
    assert run.warming[600] == 98


def test_scale_down_removes_warming_replicas_first() -> None:
    run = simulate(Fixed(3, then=1, at=10), workload(np.zeros(30)),
                   SimConfig(SIMPLE, 60, initial_replicas=2))
    # t = 0: 2 ready + 1 warming; t = 10: down to 1 drops the warming one, then one ready.
    assert (run.ready[0], run.warming[0]) == (2, 1)
    assert (run.ready[10], run.warming[10]) == (1, 0)


def _erlang_c(c: int, a: float) -> float:
    head = sum(a**k / math.factorial(k) for k in range(c))
    tail = a**c / math.factorial(c) * c / (c - a)
    return tail / (head + tail)


@pytest.mark.parametrize(
    ("servers", "rate", "expected_queue"),
    [
        # M/D/1, Pollaczek-Khinchine: Lq = ρ² / (2(1 − ρ)) = 0.64 / 0.4 = 1.6.
        pytest.param(1, 0.8, 0.8**2 / (2 * 0.2), id="M/D/1 at 80% matches Pollaczek-Khinchine"),
        # M/D/c ≈ half the M/M/c (Erlang C) queue: Lq ≈ ½ · C(c, a) · ρ / (1 − ρ).
        pytest.param(4, 3.2, 0.5 * _erlang_c(4, 3.2) * 0.8 / 0.2, id="M/D/4 at 80% is half M/M/4"),
    ],
)
def test_the_queue_behaves_like_m_d_c(servers: int, rate: float, expected_queue: float) -> None:
    arrivals = np.random.default_rng(7).poisson(rate, 200_000).astype(np.float64)
    run = simulate(Fixed(servers), workload(arrivals),
                   SimConfig(UNIT, 0, initial_replicas=servers))
    assert run.backlog.mean() == pytest.approx(expected_queue, rel=0.07)


def test_mixture_quantile_of_one_uniform_is_linear() -> None:
    lo, width, weight = np.array([100.0]), np.array([100.0]), np.array([5.0])
    assert mixture_quantile(lo, width, weight, 0.95) == pytest.approx(195.0)
    rows = mixture_quantile_rows(lo[None, :], width[None, :], weight[None, :], 0.95)
    assert rows[0] == pytest.approx(195.0, abs=1e-6)


def test_mixture_quantile_agrees_row_wise_and_exactly() -> None:
    rng = np.random.default_rng(3)
    lo, width, weight = rng.uniform(0, 900, 60), rng.uniform(50, 400, 60), rng.poisson(5, 60) + 0.0
    exact = mixture_quantile(lo, width, weight, 0.95)
    rows = mixture_quantile_rows(lo[None, :], width[None, :], weight[None, :], 0.95)
    assert rows[0] == pytest.approx(exact, abs=1e-3)


def test_mixture_quantile_by_running_sums_matches_the_dense_sum_of_every_uniform() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(1, 90))
        width = rng.uniform(50, 300, n)
        lo = width + np.where(rng.uniform(size=n) < 0.3, rng.exponential(500, n), 0.0)
        weight = rng.poisson(rng.choice([0.7, 400.0]), n).astype(np.float64)
        if weight.sum() <= 0:
            continue
        dense = _dense_quantile(lo, width, weight, 0.95, float(weight.sum()))
        assert mixture_quantile(lo, width, weight, 0.95) == pytest.approx(dense, rel=1e-12)


def test_a_percentile_on_the_level_of_a_gap_takes_the_gap_s_lower_edge_as_before() -> None:
    # 19 requests in [100, 200] ms, 1 in [1000, 1100]: the CDF is exactly 0.95 from 200 to
    # 1,000 ms, and the p95 is where it first gets there (the running sums land a hair off).
    lo, width, weight = np.array([100.0, 1000.0]), np.array([100.0, 100.0]), np.array([19.0, 1.0])
    assert mixture_quantile(lo, width, weight, 0.95) == 200.0


def test_the_default_profile_batches_within_published_gains_and_meets_its_slo() -> None:
    profile = load_profile()
    assert 3.0 <= profile.batching_gain <= 12.0
    assert profile.latency_ms(profile.sustainable_rps) == pytest.approx(profile.slo_ms, rel=1e-6)
    loads = profile.latency_at_load()
    assert list(loads) == ["50%", "70%", "85%", "95%"]
    assert loads["50%"] < loads["70%"] < loads["85%"] < loads["95%"]


def test_the_replay_table_prices_replica_hours_in_currency_only_when_given_a_price() -> None:
    from voxscale_lab.replay.report import Score, markdown, priced

    s = Score("nyc", "voxscale", 120.0, 1.0, 0.5, replica_hours=100.0, scale_events_per_hour=2.0)
    plain = markdown([s])
    assert "cost" not in plain and "| 100.0 |" in plain
    (cost,) = priced([s], 1.2, "EUR")
    assert cost.cost == 120.0
    table = markdown([cost])
    assert "| replica-h | cost (EUR) |" in table and "| 100.0 | 120.00 |" in table
    assert table.splitlines()[1].count("|") == plain.splitlines()[1].count("|") + 1
