"""A Triton success counter's past, integrated from a rate, as OpenMetrics for promtool to backfill."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from voxscale_lab.harness.prometheus import Sample, openmetrics

COUNTER = "nv_inference_request_success"


def history_openmetrics(labels: Mapping[str, str], rate: Callable[[float], float], start: float,
                        end: float, step: float, *, rule: Literal["trapezoid", "left"] = "trapezoid",
                        closed: bool = True) -> tuple[str, float]:
    """The counter sampled every `step` from `start` while it integrates `rate`; (text, final count).

    `rule`: "trapezoid" follows a smooth rate (a ramp); "left" holds each sample's rate for the
    whole step, exact for a piecewise-constant series such as a `History`. E.g. rate 2/s,
    step 5 s: 0, 10, 20, … either way. `closed`: a sample at `end` itself too; open (the demo)
    keeps every sample before `end` = now, so the blocks stay older than Prometheus's head.
    """
    samples: list[Sample] = []
    total, t = 0.0, start
    while (t <= end) if closed else (t < end):
        samples.append(Sample(COUNTER, labels, total, t))
        if rule == "trapezoid":
            total += step * (rate(t) + rate(t + step)) / 2
        else:
            total += rate(t) * step
        t += step
    final = samples[-1].value if samples else 0.0
    return openmetrics({COUNTER: ("counter", samples)}), final
