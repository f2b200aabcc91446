"""The lab's class exporter writes the voxscale_class_* series the operator's queries read."""

from __future__ import annotations

import argparse

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from voxscale import names
from voxscale_lab.worker import loadgen
from voxscale_lab.worker.classes import ClassSeries

SHARD = {"namespace": "speech", names.PROM_LABEL_CLUSTER: "asr", names.PROM_LABEL_SHARD: "eu-en"}


def samples(series: ClassSeries) -> dict[tuple[str, str, str], float]:
    """(sample name, class, le) -> value of everything exported."""
    text = generate_latest(series.registry).decode()
    return {
        (s.name, s.labels[names.PROM_LABEL_CLASS], s.labels.get("le", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if {**SHARD, names.PROM_LABEL_MODEL: "asr-standin"}.items() <= s.labels.items()
    }


def test_a_declared_class_exports_zeros_not_missing_series() -> None:
    series = ClassSeries("asr-standin", SHARD)
    series.declare("offline")
    got = samples(series)
    assert got[(names.CLASS_REQUESTS_METRIC, "offline", "")] == 0
    assert got[(names.CLASS_BACKLOG_METRIC, "offline", "")] == 0
    assert got[(names.CLASS_OLDEST_METRIC, "offline", "")] == 0


def test_received_requests_are_backlog_until_answered_and_then_a_duration() -> None:
    series = ClassSeries("asr-standin", SHARD)
    tickets = [series.received("offline", at=100.0 + i) for i in range(3)]
    live = series.received("live", at=103.0)
    assert series.backlog("offline") == 3
    assert series.oldest("offline", now=110.0) == pytest.approx(10.0)
    assert series.answered("offline", tickets[0], at=110.0) == pytest.approx(10.0)
    assert series.answered("live", live, at=103.15) == pytest.approx(0.15)
    # The oldest left is the one received at 101: 9 s old at 110.
    assert series.oldest("offline", now=110.0) == pytest.approx(9.0)
    got = samples(series)
    assert got[(names.CLASS_REQUESTS_METRIC, "offline", "")] == 3
    assert got[(names.CLASS_BACKLOG_METRIC, "offline", "")] == 2
    assert got[(names.CLASS_BACKLOG_METRIC, "live", "")] == 0
    bucket = names.CLASS_LATENCY_METRIC + "_bucket"
    assert got[(bucket, "live", "0.2")] == 1 and got[(bucket, "live", "0.1")] == 0
    assert got[(bucket, "offline", "10.0")] == 1 and got[(bucket, "offline", "5.0")] == 0


def test_the_loadgen_enters_class_mode_with_a_batch_job() -> None:
    parser = argparse.ArgumentParser()
    loadgen.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["loadgen", "--rate", "8", "--batch-requests", "500", "--batch-priority", "3",
                              "--label", "voxscale_shard=eu-en"])  # fmt: skip
    assert (args.batch_requests, args.interactive_priority, args.batch_priority) == (500, 1, 3)
    assert args.label == ["voxscale_shard=eu-en"]
