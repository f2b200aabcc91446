"""The `voxscale demo` subcommand."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from voxscale.manifest import load_manifest


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="show voxscale's plan and decisions for a SpeechCluster manifest",
        description="Render the manifest's objects, then replay a bundled real trace per shard "
        "through the operator's own decide() and forecaster, and summarise the result.",
    )
    p.add_argument("manifest", nargs="?", default="examples/speechcluster.yaml")
    p.add_argument("--traces", type=Path, default=Path("examples/traces"))
    p.add_argument("--hours", type=float, default=24.0, help="hours of each trace to replay")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for the PNG plots")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voxscale.demo.plan import run_plan

    # Piped output (CI logs, `tee`) gets a width the timeline tables fit in.
    console = Console() if Console().is_terminal else Console(width=150)
    manifest = load_manifest(Path(args.manifest))
    return run_plan(manifest, traces=args.traces, hours=args.hours, out=args.out, console=console)
