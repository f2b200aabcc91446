"""`voxscale` command line: run the operator, print the CRD, render a plan, replay, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

Command = Callable[[argparse.Namespace], int]


def _crd(_: argparse.Namespace) -> int:
    from voxscale.render.crd import render_crd

    sys.stdout.write(yaml.safe_dump(render_crd(), sort_keys=False))
    return 0


def _render(args: argparse.Namespace) -> int:
    from voxscale.manifest import load_manifest
    from voxscale.render import render_shard

    cluster = load_manifest(Path(args.manifest))
    objects: list[dict[str, Any]] = []
    for shard in cluster.spec.shards:
        objects += render_shard(cluster.owner(uid="<uid-of-the-speechcluster>"), cluster.spec, shard)
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


def _run(args: argparse.Namespace) -> int:
    from voxscale.handlers import run_operator

    return run_operator(
        namespaces=args.namespace,
        liveness_port=args.liveness_port,
        metrics_port=args.metrics_port,
        verbose=args.verbose,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxscale", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("crd", help="print the SpeechCluster CRD (generated from the API models)")

    render = sub.add_parser("render", help="print the objects a SpeechCluster manifest renders to")
    render.add_argument("manifest")

    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    run.add_argument("--liveness-port", type=int, default=8080)
    run.add_argument("--metrics-port", type=int, default=8081)
    run.add_argument("--verbose", action="store_true")
    return parser


COMMANDS: dict[str, Command] = {"crd": _crd, "render": _render, "run": _run}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
