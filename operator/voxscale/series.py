"""A regularly-sampled time series of request rate: the currency between metrics, forecast and replay."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class History:
    """`values[i]` is the rate (req/s) at `start + i*step` (unix seconds). NaN means no data."""

    start: float
    step: float
    values: FloatArray

    def __post_init__(self) -> None:
        if self.step <= 0:
            raise ValueError(f"History.step must be > 0 seconds, got {self.step}")

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def end(self) -> float:
        """Timestamp of the last sample (start when empty)."""
        return self.start + max(len(self) - 1, 0) * self.step

    def times(self) -> FloatArray:
        return self.start + self.step * np.arange(len(self), dtype=np.float64)

    def until(self, t: float) -> History:
        """Samples at or before t: what an observer at time t could have seen."""
        n = int(np.floor((t - self.start) / self.step)) + 1
        return History(self.start, self.step, self.values[: max(0, min(n, len(self)))])

    def last(self, seconds: float) -> History:
        """The trailing `seconds` of the series."""
        n = max(1, round(seconds / self.step))
        cut = max(0, len(self) - n)
        return History(self.start + cut * self.step, self.step, self.values[cut:])

    @classmethod
    def of(cls, start: float, step: float, values: npt.ArrayLike) -> History:
        return cls(float(start), float(step), np.asarray(values, dtype=np.float64))
