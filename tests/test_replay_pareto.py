"""Fronts of cost against violations, read at another policy's operating point."""

from __future__ import annotations

import pytest

from voxscale_lab.replay.pareto import (
    Point,
    cost_at_violations,
    front,
    leave_one_trace_out,
    violations_at_cost,
)

CURVE = [Point(0.5, 1.1, 8.0), Point(0.7, 1.3, 2.0), Point(0.8, 1.5, 3.0), Point(0.9, 2.0, 0.0)]


def test_the_front_drops_dominated_settings_cheapest_first() -> None:
    # 0.8 costs more than 0.7 and violates more: no one would choose it.
    assert [p.setting for p in front(CURVE)] == [0.5, 0.7, 0.9]


@pytest.mark.parametrize(
    ("cost", "violations"),
    [
        pytest.param(1.0, None, id="cheaper-than-any-setting-is-unreachable"),
        pytest.param(1.1, 8.0, id="at-a-setting-its-own-figure"),
        pytest.param(1.2, 5.0, id="halfway-between-two-settings-interpolates"),
        pytest.param(1.65, 1.0, id="between-0.7-and-0.9-past-the-dominated-one"),
        pytest.param(3.0, 0.0, id="past-the-dearest-setting-its-best"),
    ],
)
def test_violations_at_a_given_cost(cost: float, violations: float | None) -> None:
    got = violations_at_cost(CURVE, cost)
    assert got == (None if violations is None else pytest.approx(violations))


@pytest.mark.parametrize(
    ("violations", "cost"),
    [
        pytest.param(10.0, 1.1, id="looser-than-the-cheapest-costs-the-cheapest"),
        pytest.param(5.0, 1.2, id="interpolated-between-settings"),
        pytest.param(0.0, 2.0, id="zero-costs-the-setting-that-reaches-it"),
    ],
)
def test_cost_at_given_violations(violations: float, cost: float) -> None:
    assert cost_at_violations(CURVE, violations) == pytest.approx(cost)


def test_violations_below_any_setting_are_unreachable() -> None:
    assert cost_at_violations([Point(0.5, 1.0, 2.0)], 1.0) is None


def test_leave_one_trace_out_chooses_without_the_held_out_trace() -> None:
    curves = {
        "a": [Point(0.7, 1.1, 0.5), Point(0.9, 1.3, 0.0)],
        "b": [Point(0.7, 1.2, 0.8), Point(0.9, 1.4, 0.1)],
        "c": [Point(0.7, 1.1, 3.0), Point(0.9, 1.5, 0.2)],
    }
    folds = {f.held_out: f for f in leave_one_trace_out(curves, violation_budget=1.0)}
    # Without c, 0.7 stays within 1 % on a and b and is cheaper; with c in, 0.7 breaks it on c.
    assert folds["c"].setting == 0.7 and folds["c"].result == Point(0.7, 1.1, 3.0)
    assert folds["a"].setting == 0.9 and folds["b"].setting == 0.9


def test_where_no_setting_meets_the_budget_near_the_best_counts() -> None:
    curves = {
        "a": [Point(0.7, 1.1, 0.5), Point(0.9, 1.3, 0.0)],
        "b": [Point(0.7, 1.2, 0.8), Point(0.9, 1.4, 0.1)],
        "burst": [Point(0.7, 1.5, 40.0), Point(0.9, 1.6, 38.0)],
        "spiky": [Point(0.7, 1.5, 3.0), Point(0.9, 2.0, 1.6)],
    }
    folds = {f.held_out: f for f in leave_one_trace_out(curves, violation_budget=1.0)}
    # 40 % is within 25 % of burst's best (38 %): burst constrains nothing; spiky needs 0.9.
    assert folds["spiky"].setting == 0.7
    assert folds["a"].setting == 0.9 and folds["burst"].setting == 0.9
