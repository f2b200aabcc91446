"""What one Triton replica can serve: batch service time, throughput and latency versus load."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voxscale.decide.capacity import ServiceTime

DEFAULT_PROFILE = "capacity-profile.json"
LOAD_POINTS = (0.5, 0.7, 0.85, 0.95)


class CapacityProfile(BaseModel):
    """Batch service time `a + c·b` seconds for a batch of b requests, up to `max_batch`.

    Latency model (one replica, fully batched, no backlog): at load λ req/s the server runs
    batches back to back, so a batch collects the arrivals of the previous one:
    b = λ·s(b) ⇒ b = λa / (1 − λc). A request waits for the batch in flight (uniform share of
    s) and then rides the next one, so its latency is uniform on [s(b), 2·s(b)] and the p-th
    percentile is (1 + p)·s(b). Worked example with the default a = 60 ms, c = 12 ms, b ≤ 32:
    at 64 req/s, b = 64·0.06 / (1 − 64·0.012) = 16.6, s = 0.259 s, p95 = 1.95·0.259 = 505 ms.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    a_seconds: float = Field(gt=0, description="fixed cost of one model execution")
    c_seconds: float = Field(ge=0, description="marginal cost of one more request in a batch")
    max_batch: int = Field(ge=1, le=1024)
    slo_ms: float = Field(gt=0, description="latency objective the sustainable rate is quoted at")
    percentile: float = Field(gt=0, lt=1, description="SLO percentile, e.g. 0.95")
    source: str = ""

    @model_validator(mode="after")
    def _slo_reachable(self) -> CapacityProfile:
        if self.latency_ms(0.0) > self.slo_ms:
            raise ValueError(
                f"even a batch of one takes {self.latency_ms(0.0):.0f} ms at p{self.percentile:g},"
                f" above the {self.slo_ms:g} ms SLO: lower a/c or raise the SLO"
            )
        return self

    @property
    def service(self) -> ServiceTime:
        """The batch service-time model decide() plans with (decide/capacity.py)."""
        return ServiceTime(self.a_seconds, self.c_seconds, self.max_batch)

    def service_seconds(self, batch: float) -> float:
        return self.service.seconds(batch)

    @property
    def max_rps(self) -> float:
        """Throughput with full batches: B / s(B) requests per second."""
        return self.service.max_rps

    @property
    def batching_gain(self) -> float:
        """Full-batch throughput over batch-1 throughput (Triton's guide measured 3.7×)."""
        return self.max_rps * self.service_seconds(1)

    def batch_at(self, rps: float) -> float:
        """Steady-state batch size at `rps` per replica, between 1 and max_batch."""
        return self.service.batch_at(rps)

    def latency_ms(self, rps: float, percentile: float | None = None) -> float:
        """Latency percentile (ms) of one replica carrying `rps` with no backlog."""
        return self.service.latency_ms(rps, self.percentile if percentile is None else percentile)

    @property
    def sustainable_rps(self) -> float:
        """Highest per-replica rate whose latency percentile stays at or under the SLO."""
        return self.service.sustainable_rps(self.slo_ms, self.percentile)

    def latency_at_load(self) -> dict[str, float]:
        """Latency percentile (ms) at 50/70/85/95 % of the full-batch throughput."""
        return {f"{round(u * 100)}%": self.latency_ms(u * self.max_rps) for u in LOAD_POINTS}

    def summary(self) -> str:
        loads = ", ".join(f"{k} {v:.0f} ms" for k, v in self.latency_at_load().items())
        return (
            f"s(b) = {self.a_seconds * 1000:g} + {self.c_seconds * 1000:g}·b ms, max batch "
            f"{self.max_batch}; {self.max_rps:.1f} req/s full-batch ({self.batching_gain:.1f}× "
            f"batch-1); sustainable {self.sustainable_rps:.1f} req/s at p{self.percentile * 100:g}"
            f" ≤ {self.slo_ms:g} ms; latency at load: {loads}"
        )


def load_profile(path: str | Path | None = None) -> CapacityProfile:
    """The profile at `path`, or the packaged default `data/capacity-profile.json`."""
    if path is None:
        text = resources.files("voxscale_lab").joinpath("data", DEFAULT_PROFILE).read_text()
    else:
        text = Path(path).read_text()
    raw = json.loads(text)
    # Documentation keys (starting with "_") travel in the file but are not part of the model.
    return CapacityProfile.model_validate({k: v for k, v in raw.items() if not k.startswith("_")})
