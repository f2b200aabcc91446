"""The forecast's fast paths give the same bits as the code they replaced (numpy, statsmodels, a dict)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from tests.forecast_series import daily
from voxscale.forecast.errors import ErrorLog, _paired, _pinball, quantiles_linear
from voxscale.forecast.holt_winters import BOUNDS, _additive_damped_pass, _DampedAdditive
from voxscale.forecast.path import ForecastPath, _mean
from voxscale.series import FloatArray

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 257, 2160])
@pytest.mark.parametrize("qs", [(0.5, 0.9), (0.0, 1.0), (0.95,), (0.5, 0.123456)])
def test_quantiles_linear_matches_numpy_bit_for_bit(n: int, qs: tuple[float, ...]) -> None:
    for values in (RNG.normal(0.0, 0.3, n), np.round(RNG.normal(0.0, 0.3, n), 1)):  # ties too
        assert quantiles_linear(values, qs) == tuple(float(v) for v in np.quantile(values, qs))


def test_quantiles_linear_with_a_nan_answers_as_numpy_does() -> None:
    values = np.array([0.1, np.nan, 0.3])
    assert np.isnan(quantiles_linear(values, (0.5,))[0])


def _dict_join(scored: ErrorLog, persistence: ErrorLog) -> list[tuple[float, float]]:
    both = dict(persistence)
    return [(e, both[t]) for t, e in scored if t in both]


@pytest.mark.parametrize(
    "times",
    [
        pytest.param(list(range(50)), id="every-window-paired"),
        pytest.param([0, 1, 1, 2, 3, 3, 3, 5], id="repeated-issue-times-pair-with-the-last"),
        pytest.param([5, 1, 4, 4, 2], id="a-clock-that-went-back"),
    ],
)
def test_the_skill_join_pairs_windows_as_the_dict_join_did(times: list[int]) -> None:
    scored = ErrorLog((float(t), float(RNG.normal())) for t in times)
    persistence = ErrorLog((float(t), float(RNG.normal())) for t in times if t % 4 != 3)
    model, held, held_all = _paired(scored, persistence)
    assert list(zip(model.tolist(), held.tolist(), strict=True)) == _dict_join(scored, persistence)
    assert held_all.tolist() == [e for _, e in persistence]


def test_the_error_log_reads_as_the_deque_it_replaced() -> None:
    log = ErrorLog([(1.0, 0.5), (2.0, -0.25)])
    log.extend((float(t), 0.0) for t in range(3, 400))  # past the first buffer
    log.drop_before(300.0)
    assert log[0] == (300.0, 0.0) and log[-1] == (399.0, 0.0) and len(log) == 100
    assert log.popleft() == (300.0, 0.0) and len(log) == 99


def test_a_logs_remembered_quantiles_are_those_of_its_errors_as_they_are_now() -> None:
    log = ErrorLog((float(t), float(RNG.normal())) for t in range(300))

    def errors() -> FloatArray:
        return log.arrays()[1]

    assert log.quantiles((0.5, 0.9)) == quantiles_linear(errors(), (0.5, 0.9))
    assert log.quantiles((0.9,)) == quantiles_linear(errors(), (0.9,))  # asked alone: same bits
    for change in (lambda: log.append((300.0, 9.0)), lambda: log.drop_before(100.0),
                   log.popleft, log.clear, lambda: log.extend([(1.0, 2.0), (2.0, -1.0)])):
        change()
        if len(log):
            assert log.quantiles((0.9, 0.5)) == quantiles_linear(errors(), (0.9, 0.5))


def test_the_paths_mean_is_numpys_mean_bit_for_bit() -> None:
    for n in (1, 2, 15, 129, 1000):
        values = RNG.normal(100.0, 30.0, n)
        assert _mean(values) == float(values.mean())


def test_the_pinball_loss_is_numpys_mean_bit_for_bit() -> None:
    for n in (2, 7, 129, 2160):
        residual = RNG.normal(0.0, 0.5, n)
        for q in (0.5, 0.9, 0.95):
            want = float(np.mean(np.maximum(q * residual, (q - 1.0) * residual)))
            assert _pinball(residual, q) == want


def test_the_holt_winters_fast_passes_give_statsmodels_own_bits() -> None:
    y = np.log1p(daily(9, step=300.0, noise=3.0).values)

    def fit(model: type[ExponentialSmoothing]) -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model(y, trend="add", damped_trend=True, seasonal="add", seasonal_periods=288,
                         initialization_method="heuristic", bounds=BOUNDS).fit(use_brute=False)

    theirs, ours = fit(ExponentialSmoothing), fit(_DampedAdditive)
    for name in ("smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend"):
        assert ours.params[name] == theirs.params[name]  # type: ignore[attr-defined]
    assert np.array_equal(ours.resid, theirs.resid)  # type: ignore[attr-defined]
    assert np.array_equal(ours.forecast(70), theirs.forecast(70))  # type: ignore[attr-defined]


def test_a_remembered_holt_winters_recurrence_is_reused_only_for_the_same_bits() -> None:
    y = np.log1p(daily(3, step=300.0, noise=3.0).values)
    kw = {"smoothing_level": 0.3, "smoothing_trend": 0.01, "smoothing_seasonal": 0.1,
          "damping_trend": 0.97, "initial_level": 1.5, "initial_trend": 0.02,
          "initial_seasons": np.linspace(-0.5, 0.5, 288)}
    nudged = {**kw, "initial_trend": math.nextafter(0.02, 1.0)}  # one ulp: another recurrence
    memo: dict[bytes, object] = {}
    for args, h in ((kw, 3), (kw, 70), (nudged, 70), (kw, 5)):
        fresh = _additive_damped_pass(y, args, 288, h)
        remembered = _additive_damped_pass(y, args, 288, h, memo)  # type: ignore[arg-type]
        assert all(np.array_equal(a, b) for a, b in zip(fresh, remembered, strict=True))
    assert _additive_damped_pass(y, kw, 288, 5)[2][0] != _additive_damped_pass(y, nudged, 288, 5)[2][0]


def _numpy_window(path: ForecastPath, now: float, horizon: float) -> tuple[float, float, float]:
    """ForecastPath.window as it was written on numpy arrays (level 1)."""

    def at(series: FloatArray, t: float) -> float:
        pos = min(max((t - path.start) / path.step, 0.0), series.size - 1.0)
        i = int(pos)
        j = min(i + 1, series.size - 1)
        return float(series[i] + (series[j] - series[i]) * (pos - i))

    lo, hi = now, now + horizon
    i0 = max(0, math.ceil((lo - path.start) / path.step))
    i1 = min(path.mean.size, math.floor((hi - path.start) / path.step) + 1)
    mean = max(at(path.mean, lo), at(path.mean, hi))
    upper = max(at(path.upper, lo), at(path.upper, hi))
    if i1 > i0:
        mean = max(mean, float(path.mean[i0:i1].max()))
        upper = max(upper, float(path.upper[i0:i1].max()))
    current = max(0.0, (at(path.mean, lo) + 1.0) * 1.0 - 1.0)
    mean = max(0.0, (mean + 1.0) * 1.0 - 1.0)
    return mean, max(mean, (upper + 1.0) * 1.0 - 1.0), current


@pytest.mark.parametrize(
    "mean",
    [
        pytest.param([1.0, 5.0, 3.0, 2.0, 7.5], id="a-clean-path"),
        pytest.param([1.0, np.nan, 3.0, 2.0, 7.5], id="a-path-holding-nan"),
    ],
)
@pytest.mark.parametrize(("now", "horizon"), [(0.0, 200.0), (30.0, 60.0), (95.0, 130.0), (500.0, 90.0)])
def test_the_window_reads_the_path_as_numpy_did(mean: list[float], now: float, horizon: float) -> None:
    values = np.array(mean)
    path = ForecastPath(0.0, 60.0, values, values * 1.5, "test", fitted_until=-60.0)
    got = path.window(now, horizon)
    assert (got.mean, got.upper, got.current) == _numpy_window(path, now, horizon)
