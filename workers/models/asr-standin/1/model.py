"""GPU-time stand-in for an ASR model: a Triton Python-backend model that sleeps like a GPU batch.

This is NOT speech recognition. It exists so that the autoscaler can be exercised against a
real Triton server on a machine without a GPU: one model execution of a batch of b requests
takes `fixed_seconds + per_item_seconds * b` of wall time (time.sleep, no CPU burnt), the
shape of a GPU forward pass whose cost is mostly fixed (weights read, kernel launches) with a
small marginal cost per extra item. The numbers come from `profile.json` next to this file
(see workers/README.md for why the defaults are what they are); the real reference model is
`asr-reference`.

Input `AUDIO`: 16 kHz mono PCM, FP32 in [-1, 1], variable length (`dims: [-1]`).
Output `TEXT`: one UTF-8 string per request that says it came from the stand-in.

Under Triton's sequence batcher (the rendered config has `sequence_batching`, from the
SpeechCluster's `spec.streaming`) each request is one chunk of a stream: the model keeps the
stream's state per correlation ID (chunks and audio seconds so far, the stand-in's "partial
transcript"), START resets it, END frees it, and a stream idle past the rendered idle timeout
or older than the rendered session limit is dropped. It exports per-pod stream metrics
through the Python backend's metrics API (names below; voxscale.names holds the same).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

SAMPLE_RATE = 16_000
DEFAULT_PROFILE = {"fixed_seconds": 0.05, "per_item_seconds": 0.006, "load_seconds": 2.0}

# The sequence batcher's control inputs and the session-limit parameter, as the operator
# renders them (voxscale.names; a unit test keeps the two copies equal: this file runs in the
# Triton image, where voxscale is not installed).
START, END, READY, CORRID = "START", "END", "READY", "CORRID"
MAX_SESSION_PARAM = "max_session_seconds"
ACTIVE_STREAMS_METRIC = "voxscale_active_streams"
STREAM_DURATION_METRIC = "voxscale_stream_duration_seconds"
STREAMS_CLOSED_METRIC = "voxscale_streams_closed_total"
# Session lengths of phone and dictation calls: seconds to an hour.
DURATION_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


def load_profile(model_dir: str, version: str) -> dict[str, float]:
    """The defaults overlaid with `<model_dir>/<version>/profile.json`, if that file exists."""
    profile = dict(DEFAULT_PROFILE)
    path = os.path.join(model_dir, version, "profile.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        profile.update({k: float(raw[k]) for k in DEFAULT_PROFILE if k in raw})
    return profile


def device_lock_path(model_dir: str, version: str) -> str | None:
    """`device_lock` of `<model_dir>/<version>/profile.json`: a file every execution of every
    model naming it holds an exclusive lock on while it sleeps, so two models loaded in one Triton
    share one device as on a GPU (one batch at a time) instead of sleeping side by side."""
    path = os.path.join(model_dir, version, "profile.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        value = json.load(f).get("device_lock")
    return str(value) if value else None


class Device:
    """The emulated GPU: an flock on the profile's device_lock file, or nothing without one."""

    def __init__(self, path: str | None) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600) if path else None

    def run(self, seconds: float) -> None:
        import fcntl

        if self.fd is None:
            time.sleep(seconds)
            return
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            time.sleep(seconds)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)


def batch_seconds(profile: dict[str, float], batch_size: int) -> float:
    """Wall time of one execution: e.g. 0.05 + 0.006 * 16 = 0.146 s for a batch of 16."""
    return profile["fixed_seconds"] + profile["per_item_seconds"] * batch_size


def transcript(samples: int, batch_size: int) -> str:
    return (
        f"[asr-standin: GPU-time stand-in, not a transcription] "
        f"{samples / SAMPLE_RATE:.2f} s of audio in a batch of {batch_size}"
    )


# ---------------------------------------------------------------------------- streams


@dataclass
class Stream:
    """What the stand-in remembers of one stream between chunks (a real model: decoder state)."""

    started: float
    last_seen: float
    samples: int = 0
    chunks: int = 0

    @property
    def seconds(self) -> float:
        """Length of the stream's life so far: first to last chunk."""
        return self.last_seen - self.started


@dataclass(frozen=True)
class Closed:
    corrid: int
    stream: Stream
    reason: str  # end | idle | max_session | restart


def stream_transcript(corrid: int, stream: Stream, samples: int, batch_size: int) -> str:
    """The stand-in's partial transcript: it reflects every chunk the stream has sent."""
    return (
        f"[asr-standin: GPU-time stand-in, not a transcription] stream {corrid} chunk {stream.chunks}: "
        f"{stream.samples / SAMPLE_RATE:.2f} s of audio so far ({samples / SAMPLE_RATE:.2f} s in this "
        f"chunk) in a batch of {batch_size}"
    )


class Streams:
    """Per-correlation-ID state. Time is a parameter, so every rule is tested without Triton."""

    def __init__(self, idle_seconds: float, max_session_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self.max_session_seconds = max_session_seconds
        self.open: dict[int, Stream] = {}

    def chunk(
        self, corrid: int, samples: int, now: float, *, start: bool, end: bool
    ) -> tuple[Stream | None, str, list[Closed]]:
        """Apply one chunk: (the stream after it, or None with why not; the streams it closed)."""
        closed: list[Closed] = []
        if start:
            if corrid in self.open:
                closed.append(Closed(corrid, self.open.pop(corrid), "restart"))
            self.open[corrid] = Stream(started=now, last_seen=now)
        stream = self.open.get(corrid)
        if stream is None:
            return None, f"stream {corrid} is not open (ended or dropped): send sequence_start first", closed
        if now - stream.started > self.max_session_seconds:
            closed.append(Closed(corrid, self.open.pop(corrid), "max_session"))
            why = f"stream {corrid} passed the {self.max_session_seconds:g} s session limit and was ended"
            return None, why, closed
        stream.samples += samples
        stream.chunks += 1
        stream.last_seen = now
        if end:
            closed.append(Closed(corrid, self.open.pop(corrid), "end"))
        return stream, "", closed

    def expire(self, now: float) -> list[Closed]:
        """Drop streams idle past the timeout (as Triton frees their sequence) or past the limit."""
        closed = []
        for corrid, s in list(self.open.items()):
            if now - s.last_seen > self.idle_seconds:
                closed.append(Closed(corrid, self.open.pop(corrid), "idle"))
            elif now - s.started > self.max_session_seconds:
                closed.append(Closed(corrid, self.open.pop(corrid), "max_session"))
        return closed


def stream_limits(model_config: dict[str, Any]) -> tuple[float, float] | None:
    """(idle seconds, max session seconds) from the rendered config; None without sequence batching.

    Protobuf's JSON writes uint64 as a string ("10000000"); Triton's default idle time is 1 s.
    """
    sequence = model_config.get("sequence_batching")
    if sequence is None:
        return None
    idle_us = int(sequence.get("max_sequence_idle_microseconds") or 1_000_000)
    param = model_config.get("parameters", {}).get(MAX_SESSION_PARAM, {})
    max_session = float(param.get("string_value") or 24 * 3600)
    return idle_us / 1e6, max_session


def flag(request: Any, name: str, pb_utils: Any, *, absent: bool = False) -> bool:
    """A control input's value (int32 0/1, one per request), or `absent` without that input."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return absent if tensor is None else bool(tensor.as_numpy().reshape(-1)[0])


def correlation_id(request: Any, pb_utils: Any) -> int:
    tensor = pb_utils.get_input_tensor_by_name(request, CORRID)
    if tensor is not None:
        return int(tensor.as_numpy().reshape(-1)[0])
    return int(request.correlation_id())


class StreamMetrics:
    """The stream gauge, the session-length histogram and the closed counter of this model."""

    def __init__(self, pb_utils: Any, labels: dict[str, str], max_session_seconds: float) -> None:
        kind = pb_utils.MetricFamily
        # Families are kept: a Metric must not outlive its family.
        self.families = [
            kind(name=ACTIVE_STREAMS_METRIC, description="Streams open on this worker", kind=kind.GAUGE),
            kind(
                name=STREAM_DURATION_METRIC,
                description="First to last chunk of each closed stream, seconds",
                kind=kind.HISTOGRAM,
            ),
            kind(name=STREAMS_CLOSED_METRIC, description="Streams closed, by reason", kind=kind.COUNTER),
        ]
        buckets = sorted({b for b in DURATION_BUCKETS if b < max_session_seconds} | {max_session_seconds})
        self.active = self.families[0].Metric(labels=labels)
        self.duration = self.families[1].Metric(labels=labels, buckets=buckets)
        self.closed = {
            reason: self.families[2].Metric(labels={**labels, "reason": reason})
            for reason in ("end", "idle", "max_session", "restart")
        }

    def update(self, open_streams: int, closed: list[Closed]) -> None:
        for c in closed:
            self.duration.observe(c.stream.seconds)
            self.closed[c.reason].increment(1)
        self.active.set(open_streams)


# ---------------------------------------------------------------------------- the model


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config: Any) -> Any:
        # The operator renders only batching/instances into config.pbtxt; the I/O is ours.
        # The sequence batcher's control inputs (START, END, READY, CORRID) are not declared:
        # Triton adds them to each request from the config's control_input.
        auto_complete_model_config.add_input({"name": "AUDIO", "data_type": "TYPE_FP32", "dims": [-1]})
        auto_complete_model_config.add_output({"name": "TEXT", "data_type": "TYPE_STRING", "dims": [1]})
        return auto_complete_model_config

    def initialize(self, args: dict[str, str]) -> None:
        self.profile = load_profile(args["model_repository"], args["model_version"])
        self.device = Device(device_lock_path(args["model_repository"], args["model_version"]))
        limits = stream_limits(json.loads(args["model_config"]))
        self.streams: Streams | None = None
        if limits is not None:
            import triton_python_backend_utils as pb_utils

            self.streams = Streams(*limits)
            labels = {"model": args["model_name"], "version": args["model_version"]}
            self.metrics = StreamMetrics(pb_utils, labels, limits[1])
            self.metrics.update(0, [])
            self.lock = threading.Lock()
            self.stopping = threading.Event()
            # Triton frees an idle sequence without telling the model: sweep on our own clock,
            # four times per idle timeout (at most 1 s apart), so the gauge falls on time.
            self.sweeper = threading.Thread(target=self._sweep, args=(min(1.0, limits[0] / 4),), daemon=True)
            self.sweeper.start()
        # Emulates reading weights onto a GPU: the worker is not Ready before this returns.
        time.sleep(self.profile["load_seconds"])

    def _sweep(self, every: float) -> None:
        assert self.streams is not None
        while not self.stopping.wait(every):
            with self.lock:
                closed = self.streams.expire(time.monotonic())
                if closed:
                    self.metrics.update(len(self.streams.open), closed)

    def execute(self, requests: list[Any]) -> list[Any]:
        import numpy as np
        import triton_python_backend_utils as pb_utils

        if self.streams is not None:
            return self._execute_streams(requests, pb_utils, np)
        audio = [pb_utils.get_input_tensor_by_name(r, "AUDIO").as_numpy() for r in requests]
        batch = sum(int(a.shape[0]) for a in audio)
        self.device.run(batch_seconds(self.profile, batch))
        responses = []
        for a in audio:
            texts = [[transcript(int(row.shape[-1]), batch).encode()] for row in a]
            out = pb_utils.Tensor("TEXT", np.array(texts, dtype=np.object_))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses

    def _execute_streams(self, requests: list[Any], pb_utils: Any, np: Any) -> list[Any]:
        # READY false marks a filler request (no data) the batcher may add: it gets no state.
        audio = [
            pb_utils.get_input_tensor_by_name(r, "AUDIO").as_numpy()
            if flag(r, READY, pb_utils, absent=True)
            else None
            for r in requests
        ]
        batch = sum(int(a.shape[0]) for a in audio if a is not None)
        time.sleep(batch_seconds(self.profile, batch))
        with self.lock:
            now = time.monotonic()
            answers = [
                self._answer(r, a, batch, now, pb_utils=pb_utils, np=np)
                for r, a in zip(requests, audio, strict=True)
            ]
            assert self.streams is not None
            self.metrics.update(len(self.streams.open), [c for _, closed in answers for c in closed])
        return [response for response, _ in answers]

    def _answer(
        self, request: Any, audio: Any, batch: int, now: float, *, pb_utils: Any, np: Any
    ) -> tuple[Any, list[Closed]]:
        """One chunk through its stream's state: the response, and the streams it closed."""
        assert self.streams is not None
        if audio is None:
            return pb_utils.InferenceResponse(output_tensors=[]), []
        corrid, samples = correlation_id(request, pb_utils), int(audio.shape[-1])
        start, end = flag(request, START, pb_utils), flag(request, END, pb_utils)
        stream, why, closed = self.streams.chunk(corrid, samples, now, start=start, end=end)
        if stream is None:
            return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(why)), closed
        text = stream_transcript(corrid, stream, samples, batch).encode()
        out = pb_utils.Tensor("TEXT", np.array([[text]] * int(audio.shape[0]), dtype=np.object_))
        return pb_utils.InferenceResponse(output_tensors=[out]), closed

    def finalize(self) -> None:
        if self.streams is not None:
            self.stopping.set()
            self.sweeper.join(timeout=5)
