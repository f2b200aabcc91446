"""voxscale in replay drives the operator's own decide() and ForecastCache, seeing only the past."""

from __future__ import annotations

import numpy as np

from voxscale.series import History
from voxscale_lab.capacity import load_profile
from voxscale_lab.replay.policies.voxscale import VoxscalePolicy
from voxscale_lab.replay.runner import Scenario, context
from voxscale_lab.replay.simulator import SimConfig, simulate
from voxscale_lab.replay.view import RunArrays, View
from voxscale_lab.replay.workload import Workload

START = 1_700_006_400.0  # a whole day boundary + 0


def _daily(seconds: int, prior_days: int = 3) -> Workload:
    """A daily cycle with the previous days as 1-minute prior history."""
    def rate(t: np.ndarray) -> np.ndarray:
        return 900 + 700 * np.sin(2 * np.pi * t / 86_400)

    minutes = START - 60.0 * np.arange(prior_days * 1440, 0, -1)
    prior = History.of(minutes[0], 60, rate(minutes + 30))
    now = START + np.arange(seconds)
    per_second = rate(now)
    arrivals = np.random.default_rng(1).poisson(per_second).astype(np.float64)
    return Workload("daily", START, arrivals, per_second, prior)


def test_voxscale_refits_hourly_and_learns_warm_up_from_simulated_pods() -> None:
    profile = load_profile()
    work = _daily(2 * 3600 + 60)
    scenario = Scenario(warmup_seconds=120)
    ctx = context(profile, work, scenario)
    policy = VoxscalePolicy(ctx)
    run = simulate(policy, work, SimConfig(profile, 120, initial_replicas=ctx.initial_replicas))
    assert policy.interval_seconds == 10.0
    # A fit at the start, then one per refitEvery (1 h, jittered ±25 % per key by the cache),
    # never one per tick: 2 h of 10-s ticks is 721 ticks but only 2 or 3 fits.
    assert 2 <= policy.cache.refits <= 3
    # Pods that went from created to Ready in the simulator fed the learned warm-up.
    assert run.ready.max() > ctx.initial_replicas
    assert policy.state.warmup_samples and set(policy.state.warmup_samples) == {120.0}


def test_the_view_never_shows_the_future() -> None:
    profile = load_profile()
    work = _daily(600)
    changed = Workload(work.name, work.start, work.arrivals.copy(), work.rate, work.prior)
    changed.arrivals[300:] *= 10
    answers = []
    for w in (work, changed):
        view = View(RunArrays.empty(w, profile), w, SimConfig(profile, 60), now_index=300)
        answers.append((view.arrival_rate(60), view.rate_history(60, served=False).values[-3:]))
    assert answers[0][0] == answers[1][0]
    assert np.array_equal(answers[0][1], answers[1][1])


def test_voxscale_observes_the_served_rate_over_both_the_stable_and_the_panic_window() -> None:
    # 100 served per second, then 400 over the last 10 s: the 30 s window averages 200,
    # the 60 s window 150, as Prometheus's rate() over each would.
    profile = load_profile()
    work = _daily(600)
    arrays = RunArrays.empty(work, profile)
    served = np.where(np.arange(work.seconds) >= 290, 400.0, 100.0)
    arrays.cum_served[1:] = np.cumsum(served)
    arrays.lo_ms[:], arrays.width_ms[:] = 200.0, 200.0  # every second's latency: 200-400 ms
    view = View(arrays, work, SimConfig(profile, 60), now_index=300, ready=3)
    policy = VoxscalePolicy(context(profile, work, Scenario(warmup_seconds=60)))
    metrics = policy.observe(START + 300, view).metrics
    assert policy.policy.panic_window_seconds == 30.0
    assert (metrics.rate, metrics.panic_rate) == (150.0, 200.0)
