"""`voxscale loadgen`: open-loop gRPC load on a Triton worker from a Poisson rate or a trace file."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from voxscale.series import FloatArray
from voxscale_lab.worker import classes
from voxscale_lab.worker.arrivals import poisson_arrivals, trace_arrivals, window
from voxscale_lab.worker.results import Outcome, Record, classify, records_json, summarize
from voxscale_lab.worker.triton import INSTALL_HINT

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Target:
    url: str
    model: str
    audio: np.ndarray[Any, np.dtype[np.float32]]
    client_timeout: float | None


def chunk_audio(seconds: float, seed: int = 0) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A fixed-length chunk of quiet noise: streaming ASR sends equal chunks, and Triton's
    dynamic batcher only batches requests whose variable-length inputs have equal shapes."""
    rng = np.random.default_rng(seed)
    return (0.01 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


async def _one(client: Any, target: Target, due: float, start: float, out: list[Record]) -> None:
    from tritonclient.grpc import InferInput
    from tritonclient.utils import InferenceServerException

    sent = time.monotonic()
    inp = InferInput("AUDIO", [1, len(target.audio)], "FP32")
    inp.set_data_from_numpy(target.audio[np.newaxis, :])
    outcome: Outcome = "ok"
    detail = ""
    try:
        result = await client.infer(target.model, [inp], client_timeout=target.client_timeout)
        if result.as_numpy("TEXT") is None:
            outcome, detail = "error", "no TEXT output"
    except InferenceServerException as e:
        outcome, detail = classify(str(e.status()), str(e.message())), str(e.message())[:200]
    out.append(Record(due, sent - start - due, time.monotonic() - sent, outcome, detail))


async def drive(
    target: Target, arrivals: FloatArray, progress: Progress | None = None
) -> tuple[list[Record], float]:
    """Send one request at each arrival time regardless of earlier answers (open loop)."""
    try:
        from tritonclient.grpc.aio import InferenceServerClient
    except ImportError as e:
        raise RuntimeError(f"tritonclient is not installed: {INSTALL_HINT}") from e
    records: list[Record] = []
    task_id = progress.add_task("requests", total=len(arrivals)) if progress else None
    client = InferenceServerClient(target.url)
    try:
        start = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        for due in arrivals:
            delay = start + float(due) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(_one(client, target, float(due), start, records))
            pending.add(task)
            task.add_done_callback(pending.discard)
            if progress is not None and task_id is not None:
                task.add_done_callback(lambda _: progress.advance(task_id))
        if pending:
            await asyncio.gather(*pending)
        return records, time.monotonic() - start
    finally:
        await client.close()


def run_load(target: Target, arrivals: FloatArray, *, show_progress: bool = True) -> dict[str, Any]:
    """Drive the load and return the summary plus every record."""
    console = Console(stderr=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not show_progress) as progress:
        records, wall = asyncio.run(drive(target, arrivals, progress))
    return {"summary": summarize(records, wall, len(arrivals)), "records": records_json(records)}


def schedule(args: argparse.Namespace) -> FloatArray:
    rng = np.random.default_rng(args.seed)
    if args.trace:
        from voxscale_lab.traces import load_trace

        arrivals = trace_arrivals(
            load_trace(args.trace),
            rng,
            time_scale=args.time_scale,
            rate_scale=args.rate_scale,
            step_seconds=args.step_seconds,
        )
        return window(arrivals, args.skip, args.duration)
    return poisson_arrivals(args.rate, args.duration or 30.0, rng)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = subparsers.add_parser("loadgen", help="open-loop gRPC load on a Triton worker")
    p.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC host:port")
    p.add_argument("--model", default="asr-standin")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--rate", type=float, default=10.0, help="Poisson arrivals, requests/s")
    src.add_argument("--trace", type=Path, help="NAB rate CSV or per-request log (see voxscale_lab.traces)")
    p.add_argument("--duration", type=float, help="seconds to send (default 30 for --rate, whole trace)")
    p.add_argument("--time-scale", type=float, default=1.0, help="play the trace this many times faster")
    p.add_argument("--rate-scale", type=float, default=1.0, help="multiply the trace's rate")
    p.add_argument("--step-seconds", type=float, default=60.0, help="rate step for interval traces")
    p.add_argument("--skip", type=float, default=0.0, help="start this many (scaled) seconds in")
    p.add_argument("--audio-seconds", type=float, default=1.0, help="length of each request's audio chunk")
    p.add_argument("--timeout", type=float, help="client deadline per request, seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write the summary and every record as JSON here")
    p.add_argument("--no-progress", action="store_true")
    streams = p.add_argument_group("streams (a worker rendered with spec.streaming)")
    streams.add_argument("--streams", type=int, help="open this many streams instead of single requests")
    streams.add_argument("--chunks", type=int, default=10, help="chunks per stream (its length)")
    streams.add_argument("--chunks-max", type=int, help="mixed lengths: uniform in [--chunks, this]")
    streams.add_argument("--pace", type=float, help="seconds between a stream's chunks (default: real time)")
    streams.add_argument("--stagger", type=float, default=0.0, help="seconds between stream starts")
    streams.add_argument("--first-sequence-id", type=int, default=1)
    classes.add_arguments(p)
    p.set_defaults(handler=run)
    return p


def run_streams_mode(args: argparse.Namespace) -> int:
    from voxscale_lab.worker.streams import run_streams

    rng = np.random.default_rng(args.seed)
    high = max(args.chunks, args.chunks_max or args.chunks)
    chunks = [int(n) for n in rng.integers(args.chunks, high + 1, size=args.streams)]
    result = run_streams(
        args.url,
        args.model,
        chunks,
        chunk_audio(args.audio_seconds, args.seed),
        pace=args.audio_seconds if args.pace is None else args.pace,
        first_id=args.first_sequence_id,
        stagger=args.stagger,
        client_timeout=args.timeout,
    )
    s = result["summary"]
    print(
        f"{s['streams']} streams, {s['chunks']} chunks over {s['wall_seconds']} s: ended {s['ended']},"
        f" cut {s['cut']}; chunk p50 {s['chunk_p50_ms']} ms, p95 {s['chunk_p95_ms']} ms,"
        f" p99 {s['chunk_p99_ms']} ms"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
        print(f"results: {args.out}", file=sys.stderr)
    return 0 if s["cut"] == 0 else 1


def run(args: argparse.Namespace) -> int:
    if args.streams:
        return run_streams_mode(args)
    if args.batch_requests:
        return classes.run_classes_mode(args)
    arrivals = schedule(args)
    target = Target(args.url, args.model, chunk_audio(args.audio_seconds, args.seed), args.timeout)
    result = run_load(target, arrivals, show_progress=not args.no_progress)
    s = result["summary"]
    print(
        f"offered {s['offered']} requests over {s['wall_seconds']} s -> {s['throughput_rps']} req/s ok; "
        f"p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, p99 {s['p99_ms']} ms; "
        f"rejected {s['rejected']}, timeouts {s['timeout']}, errors {s['error']}"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
        print(f"results: {args.out}", file=sys.stderr)
    return 0 if s["error"] == 0 else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m voxscale_lab.worker.loadgen ...`: the same as `voxscale loadgen ...`."""
    parser = argparse.ArgumentParser(prog="voxscale")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["loadgen", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    raise SystemExit(main())
