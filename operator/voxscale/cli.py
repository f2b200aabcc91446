"""`voxscale` command line: run the operator, print the CRD, render a manifest; the lab adds the rest.

`replay`, `demo`, `dev`, `worker` and `loadgen` come from the lab (`voxscale_lab.commands`)
through the `voxscale.commands` entry points, so the operator wing imports none of it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from voxscale.metrics.endpoints import DEFAULT_ALLOWED, AllowList, parse_entry

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
    owner = cluster.owner(uid="<uid-of-the-speechcluster>")
    for shard in cluster.spec.shards:
        objects += render_shard(owner, cluster.spec, shard)
    if cluster.spec.routing is not None:
        from voxscale.render.routes import plan_route

        plan = plan_route(owner, cluster.spec, cluster.spec.routing)
        for reason, message in plan.problems:
            sys.stderr.write(f"{reason}: {message}\n")
        if plan.route is not None:
            objects.append(plan.route)
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


def _run(args: argparse.Namespace) -> int:
    from voxscale.handlers import run_operator

    return run_operator(
        namespaces=args.namespace,
        liveness_port=args.liveness_port,
        metrics_port=args.metrics_port,
        verbose=args.verbose,
        endpoints=AllowList.parse(args.allowed_metrics_endpoint or DEFAULT_ALLOWED),
    )


def _endpoint_entry(text: str) -> str:
    """argparse type: a bad allow-list entry stops `voxscale run` with what is wrong."""
    try:
        parse_entry(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


COMMANDS_GROUP = "voxscale.commands"


def _add_lab_commands(sub: Any) -> None:
    """The lab's subcommands (replay, demo, dev, worker, loadgen), found through entry points.

    The operator never imports the lab by name. A command whose module or extra is missing
    still appears, and says how to get it instead of failing with a traceback.
    """
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            entry.load()(sub)
        except ImportError as err:
            missing = sub.add_parser(entry.name, help="(needs: pip install 'voxscale[lab]')")
            missing.set_defaults(func=partial(_missing_lab, entry.name, str(err)))


def _missing_lab(name: str, reason: str, _: argparse.Namespace) -> int:
    sys.stderr.write(
        f"voxscale {name}: {reason}. It is part of the lab: pip install 'voxscale[lab]' "
        "(and 'voxscale[worker]' for the Triton worker)\n"
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxscale", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("crd", help="print the SpeechCluster CRD (generated from the API models)").set_defaults(
        func=_crd
    )
    render = sub.add_parser("render", help="print the objects a SpeechCluster manifest renders to")
    render.add_argument("manifest")
    render.set_defaults(func=_render)

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
    run.add_argument(
        "--allowed-metrics-endpoint",
        action="append",
        default=[],
        type=_endpoint_entry,
        metavar="ENTRY",
        help="a Prometheus endpoint SpeechClusters may name in spec.prometheus.url (repeatable): a "
        "host pattern ('*.svc', 'prom.monitoring.svc:9090') or a URL prefix "
        "('https://thanos.example.com/tenant-a'); any other URL is refused without a request. "
        f"Default: {' '.join(DEFAULT_ALLOWED)}",
    )
    run.set_defaults(func=_run)

    _add_lab_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    raise SystemExit(main())
