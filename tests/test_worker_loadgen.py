"""`voxscale loadgen` turns its command line into an open-loop arrival schedule."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from voxscale_lab.worker import loadgen

TRACES = Path(__file__).resolve().parents[1] / "examples" / "traces"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    loadgen.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["loadgen", *argv])


@pytest.mark.parametrize(
    ("argv", "low", "high"),
    [
        (("--rate", "20", "--duration", "50"), 800, 1200),
        # NYC taxi, 30-min steps played 1800x faster (1 s each); 0.004 to 22 req/s, 8.4 mean.
        (("--trace", str(TRACES / "nyc_taxi.csv"), "--time-scale", "1800",
          "--step-seconds", "1800", "--duration", "100"), 200, 2000),
        (("--trace", str(TRACES / "AzureLLMInferenceTrace_conv.csv"), "--duration", "60"), 10, 100_000),
    ],
    ids=["poisson", "nab-rate-series-compressed", "azure-per-request-log"],
)  # fmt: skip
def test_every_source_gives_a_sorted_schedule_inside_the_duration(
    argv: tuple[str, ...], low: int, high: int
) -> None:
    args = parse(*argv)
    arrivals = loadgen.schedule(args)
    assert low <= len(arrivals) <= high
    assert np.all(np.diff(arrivals) >= 0)
    assert arrivals.min() >= 0 and arrivals.max() < args.duration
    assert args.handler is loadgen.run


def test_the_audio_chunk_is_16_khz_float_pcm_of_the_requested_length() -> None:
    chunk = loadgen.chunk_audio(0.5)
    assert chunk.dtype == np.float32 and chunk.shape == (8000,)
    assert np.abs(chunk).max() < 1.0
