"""THE accuracy test: Holt-Winters beats seasonal-naive (MASE) on held-out days of real traces.

Rolling origin over the last 7 days of each trace: from each midnight, forecast the whole
next day (horizon = 24 h, the hardest horizon the operator could ask for; its operational
horizon is minutes) from all data before it. MASE scales each day's MAE by the in-sample MAE
of the daily seasonal-naive forecast on that day's training data (Hyndman & Koehler 2006).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from voxscale.forecast import HoltWinters, SeasonalNaive
from voxscale.forecast.evaluate import rolling_origin
from voxscale_lab.traces import load_trace

TRACES = Path(__file__).resolve().parents[1] / "examples" / "traces"
DAY = 86400.0
NATIVE = 10**6  # fit seasonal-naive at the trace's own resolution, never coarser


@pytest.mark.parametrize(
    ("trace", "step"),
    [("nyc_taxi.csv", 1800.0), ("elb_request_count_8c0756.csv", 300.0)],
    ids=["nyc-taxi-30min", "elb-5min"],
)
def test_holt_winters_has_a_lower_mase_than_seasonal_naive_on_held_out_days(trace: str, step: float) -> None:
    history = load_trace(TRACES / trace).rate(step)
    scores = {
        name: rolling_origin(history, model, origins=7, horizon_seconds=DAY, scale_season_seconds=DAY)
        for name, model in [
            ("holt-winters", HoltWinters()),
            ("seasonal-naive(daily)", SeasonalNaive(DAY, max_per_season=NATIVE)),
            ("seasonal-naive(weekly)", SeasonalNaive(7 * DAY, max_per_season=NATIVE)),
        ]
    }
    for name, score in scores.items():
        print(f"{trace} {name}: MASE {score.mase:.3f}", [round(s, 2) for s in score.per_origin])
    assert scores["holt-winters"].mase < scores["seasonal-naive(daily)"].mase
    if trace == "nyc_taxi.csv":  # weeks of history: the weekly profile must beat last week too
        assert scores["holt-winters"].mase < scores["seasonal-naive(weekly)"].mase
