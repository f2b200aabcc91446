"""What a tick reads about one shard besides its main metrics (blocking; call in a thread).

Each read is one concern of the spec — the Interactive class's series (spec.classes), the
smaller model's (spec.model.fallback), each Batch class's backlog, the live streams
(spec.streaming) — and each is a no-op without its part of the spec. No data stays None.
"""

from __future__ import annotations

from dataclasses import replace

from voxscale.api import SpeechClusterSpec
from voxscale.decide.types import ClassMetrics, ShardMetrics
from voxscale.metrics.protocol import MetricsSource, ShardSelector


def shard_selector(namespace: str, cluster: str, spec: SpeechClusterSpec, shard: str) -> ShardSelector:
    """The shard's series; with spec.classes, its Interactive class's (docs/classes.md)."""
    interactive = spec.interactive_class
    return ShardSelector(namespace, cluster, shard, spec.model.name,
                         traffic_class=interactive.name if interactive else None)


def with_fallback(
    spec: SpeechClusterSpec, source: MetricsSource, selector: ShardSelector, main: ShardMetrics,
    now: float,
) -> tuple[ShardMetrics, bool | None]:
    """spec.model.fallback: the smaller model's series too, and whether it is loaded.

    Requests moved to it are interactive load the main model's series no longer count, so the
    rates add (the plan still sizes for all of it at the main model's capacity). Triton exports a
    model's series only once it is loaded: none while the main model answers means not loaded;
    with no answer for either, it is not known (None)."""
    fallback = spec.model.fallback
    if fallback is None:
        return main, None
    small = source.observe(replace(selector, model=fallback.name), now)
    if not small.usable:
        return main, (False if main.usable else None)

    def plus(a: float | None, b: float | None) -> float | None:
        return None if a is None else a + (b or 0.0)

    # The batch efficiency stays the main model's: calibration (decide/batching.py) needs each
    # model's own rate and batch, since both share the replica's GPU time.
    merged = replace(main, rate=plus(main.rate, small.rate), queue=plus(main.queue, small.queue),
                     panic_rate=plus(main.panic_rate, small.panic_rate),
                     fallback_rate=small.rate, fallback_batch=small.batch_efficiency)
    return merged, True


def batch_classes(
    spec: SpeechClusterSpec, source: MetricsSource, selector: ShardSelector, now: float
) -> tuple[ClassMetrics, ...]:
    """Each Batch class's reading; none without spec.classes."""
    batch = [c.name for c in spec.classes or () if c.kind == "Batch"]
    return tuple(source.class_metrics(selector, name, now) for name in batch)


def live_streams(
    spec: SpeechClusterSpec, source: MetricsSource, selector: ShardSelector, now: float
) -> float | None:
    """spec.streaming: live streams summed over the pods that report them; None = no data."""
    if spec.streaming is None:
        return None
    known = source.pod_streams(selector, now).by_pod.values()
    return float(sum(known)) if known else None
