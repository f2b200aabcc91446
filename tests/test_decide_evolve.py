"""evolve() builds what dataclasses.replace builds, and leaves to replace what it cannot copy."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from voxscale.decide.evolve import evolve
from voxscale.decide.types import Forecast, Policy


@dataclass(frozen=True)
class _Checked:
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low above high")


@dataclass(frozen=True)
class _Derived:
    base: int
    twice: int = field(init=False, default=0)


def test_a_policy_and_a_forecast_come_out_as_replace_makes_them() -> None:
    policy = Policy(capacity_rps=64.0, max_replicas=40)
    assert evolve(policy, capacity_rps=43.0) == replace(policy, capacity_rps=43.0)
    forecast = Forecast(0.0, 130.0, 100.0, 120.0, "holt-winters(daily)", current=90.0)
    got = evolve(forecast, mean=102.0, calibrated=True)
    assert got == replace(forecast, mean=102.0, calibrated=True)
    assert forecast.mean == 100.0 and not forecast.calibrated  # the original is untouched


def test_a_class_with_post_init_still_runs_its_check() -> None:
    with pytest.raises(ValueError, match="low above high"):
        evolve(_Checked(1, 2), low=3)


def test_a_field_outside_init_and_an_unknown_name_go_to_replace() -> None:
    assert evolve(_Derived(1), base=2) == replace(_Derived(1), base=2)
    with pytest.raises(TypeError):
        evolve(Policy(), no_such_knob=1)
