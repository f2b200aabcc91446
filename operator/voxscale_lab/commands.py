"""The lab's `voxscale` subcommands, registered as entry points (group `voxscale.commands`).

Each function adds one subcommand to the operator CLI's subparsers; the operator's `cli.py`
finds them through package metadata and never imports the lab by name.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_replay(sub: Any) -> None:
    from voxscale_lab.replay import cli as replay

    replay.add_parser(sub)


def add_demo(sub: Any) -> None:
    from voxscale_lab.demo import cli as demo

    demo.add_parser(sub)


def _dev_cluster(args: argparse.Namespace) -> int:
    from voxscale_lab.devcluster.commands import cluster_down, cluster_up

    state = Path(args.state_dir) if args.state_dir else None
    return cluster_up(state) if args.action == "up" else cluster_down(state)


def add_dev(sub: Any) -> None:
    dev = sub.add_parser("dev", help="developer tools").add_subparsers(dest="dev_command", required=True)
    cluster = dev.add_parser("cluster", help="a local control plane with kwok GPU nodes (for e2e and demo)")
    cluster.add_argument("action", choices=["up", "down"])
    cluster.add_argument("--state-dir", help="where certificates, logs and the kubeconfig live")
    cluster.set_defaults(func=_dev_cluster)


def add_worker(sub: Any) -> None:
    """`voxscale worker serve`: the Triton worker (needs the worker extra as well)."""
    from voxscale_lab.worker import serve

    worker = sub.add_parser("worker", help="the Triton worker side (needs the worker extra)")
    serve.add_parser(worker.add_subparsers(dest="worker_command", required=True)).set_defaults(func=serve.run)


def add_loadgen(sub: Any) -> None:
    from voxscale_lab.worker import loadgen

    loadgen.add_parser(sub).set_defaults(func=loadgen.run)
