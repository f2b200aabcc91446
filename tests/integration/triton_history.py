"""A known Triton metrics history (counters, summaries, gauges with voxscale labels) and its truth.

Three hours at 15 s steps for shard prod/asr/eu-west (model whisper, pods w-0 and w-1), with a
ten-minute scrape gap, plus look-alike series that a correct selector must ignore: the same
cluster and shard in namespace `staging`, shard `us-east`, and model `vad`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

from voxscale_lab.harness.prometheus import Sample, openmetrics

STEP = 15.0
SEGMENT = 1800.0  # rates change every 30 minutes
POD_RATES = {"w-0": (4.0, 6.0, 10.0, 8.0, 5.0, 3.0), "w-1": (2.0, 3.0, 5.0, 4.0, 2.0, 1.0)}
POD_BATCH = {"w-0": 4.0, "w-1": 2.0}
POD_P95_US = {"w-0": 120_000.0, "w-1": 180_000.0}
POD_P50_US = {"w-0": 40_000.0, "w-1": 60_000.0}
POD_PENDING = {"w-0": 3.0, "w-1": 4.0}
GAP = (3 * SEGMENT + 600.0, 3 * SEGMENT + 1200.0)  # seconds after start, no scrapes
TARGET = {"namespace": "prod", "voxscale_cluster": "asr", "voxscale_shard": "eu-west",
          "model": "whisper"}
DECOYS = (  # (label overrides, rate multiplier): must never leak into the target's answers
    ({"namespace": "staging"}, 100.0),
    ({"voxscale_shard": "us-east"}, 50.0),
    ({"model": "vad"}, 70.0),
)


@dataclass
class TritonHistory:
    start: float
    """First sample time (unix seconds, a multiple of STEP)."""
    points: int = int(3 * 3600 / STEP)
    counters: dict[float, float] = field(default_factory=dict)
    """Target shard: time -> success counter summed over pods, at scraped times only."""

    @property
    def end(self) -> float:
        return self.start + (self.points - 1) * STEP

    def scraped(self, t: float) -> bool:
        return not (GAP[0] <= t - self.start < GAP[1])

    def rate_at(self, pod: str, t: float, scale: float = 1.0) -> float:
        seg = min(int((t - self.start) // SEGMENT), len(POD_RATES[pod]) - 1)
        return POD_RATES[pod][seg] * scale

    def to_openmetrics(self) -> str:
        families: dict[str, tuple[str, list[Sample]]] = {
            "nv_inference_request_success": ("counter", []),
            "nv_inference_count": ("counter", []),
            "nv_inference_exec_count": ("counter", []),
            "nv_inference_request_summary_us": ("summary", []),
            "nv_inference_pending_request_count": ("gauge", []),
        }
        for overrides, scale in (({}, 1.0), *DECOYS):
            for pod in POD_RATES:
                labels = {**TARGET, **overrides, "pod": pod, "version": "1"}
                self._pod_series(families, labels, pod, scale, track=not overrides)
        return openmetrics(families)

    def _pod_series(self, families: dict[str, tuple[str, list[Sample]]], labels: dict[str, str],
                    pod: str, scale: float, *, track: bool) -> None:
        success = execs = 0.0
        by_name: dict[str, list[Sample]] = {k: v[1] for k, v in families.items()}
        for i in range(self.points):
            t = self.start + i * STEP
            if i:
                r = self.rate_at(pod, t - STEP, scale)
                success += r * STEP
                execs += r * STEP / POD_BATCH[pod]
            if track and self.scraped(t):
                self.counters[t] = self.counters.get(t, 0.0) + success
            if not self.scraped(t):
                continue
            by_name["nv_inference_request_success"].append(Sample(
                "nv_inference_request_success", labels, success, t))
            by_name["nv_inference_count"].append(Sample("nv_inference_count", labels, success, t))
            by_name["nv_inference_exec_count"].append(Sample(
                "nv_inference_exec_count", labels, execs, t))
            by_name["nv_inference_pending_request_count"].append(Sample(
                "nv_inference_pending_request_count", labels, POD_PENDING[pod] * scale, t))
        summary = by_name["nv_inference_request_summary_us"]
        for q, table in (("0.5", POD_P50_US), ("0.95", POD_P95_US)):
            summary.extend(
                Sample("nv_inference_request_summary_us", {**labels, "quantile": q},
                       table[pod] * scale, self.start + i * STEP)
                for i in range(self.points) if self.scraped(self.start + i * STEP)
            )

    # ------------------------------------------------------------------ truth for the target

    def last_rate(self) -> float:
        return sum(self.rate_at(p, self.end - STEP) for p in POD_RATES)

    def last_batch_efficiency(self) -> float:
        rates = {p: self.rate_at(p, self.end - STEP) for p in POD_RATES}
        return sum(rates.values()) / sum(r / POD_BATCH[p] for p, r in rates.items())

    def expected_rate(self, t: float, window: float = 60.0) -> float | None:
        """rate(...[window]) at t where it is exact (every scrape present, one slope); NaN where
        even an end-inclusive window holds < 2 samples; None where the value is in between."""
        inclusive = [s for s in self.counters if t - window <= s <= t]
        if len(inclusive) < 2:
            return math.nan
        times = [t - k * STEP for k in range(int(window / STEP), -1, -1)]
        if not all(s in self.counters for s in times):
            return None
        steps = {round(self.counters[b] - self.counters[a], 9) for a, b in pairwise(times)}
        return steps.pop() / STEP if len(steps) == 1 else None

    def surely_defined(self, t: float, window: float = 60.0) -> bool:
        """Even a start-exclusive window (Prometheus 3) holds >= 2 samples: rate has a value."""
        return sum(1 for s in self.counters if t - window < s <= t) >= 2
