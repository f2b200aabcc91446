"""evolve() builds what dataclasses.replace builds and updated() what pydantic's model_copy builds;
each leaves to the original what it cannot copy."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

from voxscale.api import Recommendation, ScalerState
from voxscale.decide.evolve import evolve, updated
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


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")
    n: int = 0


class _Private(BaseModel):
    n: int = 0
    _seen: int = PrivateAttr(default=0)


def _parts(model: BaseModel) -> tuple[object, ...]:
    return (type(model), model.__dict__, model.__pydantic_fields_set__, model.__pydantic_extra__,
            model.__pydantic_private__)


def test_a_scaler_state_comes_out_as_model_copy_makes_it() -> None:
    state = ScalerState(last_replicas=3, warmup_samples=[120.0],
                        recommendations=[Recommendation(at=0.0, replicas=3)])
    change = {"panic_since": 10.0, "panic_until": None}
    got, want = updated(state, change), state.model_copy(update=change)
    assert _parts(got) == _parts(want) and got == want
    assert got.recommendations is state.recommendations  # shallow, as model_copy
    assert state.panic_since is None and "panic_since" not in state.model_fields_set
    assert got.model_dump(exclude_unset=True) == want.model_dump(exclude_unset=True)
    assert _parts(updated(state, {})) == _parts(state.model_copy(update={}))


def test_a_model_with_extra_or_private_attributes_goes_to_model_copy() -> None:
    open_ = _Open(n=1, other=2)
    change = {"n": 3, "more": 4}
    assert _parts(updated(open_, change)) == _parts(open_.model_copy(update=change))
    private = _Private(n=1)
    private._seen = 5
    got = updated(private, {"n": 2})
    assert _parts(got) == _parts(private.model_copy(update={"n": 2})) and got._seen == 5
