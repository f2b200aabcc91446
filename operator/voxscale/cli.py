"""`voxscale` command line: run the operator, print the CRD, render a plan, replay, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
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
        endpoints=AllowList.parse(args.allowed_metrics_endpoint or DEFAULT_ALLOWED),
    )


def _endpoint_entry(text: str) -> str:
    """argparse type: a bad allow-list entry stops `voxscale run` with what is wrong."""
    try:
        parse_entry(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _optional(register: Callable[[Any], None], parent: Any, name: str, extra: str) -> None:
    """Register a subcommand whose module needs an optional extra; say how to get it if absent."""
    try:
        register(parent)
    except ImportError as err:
        reason = str(err)
        missing = parent.add_parser(name, help=f"(needs: pip install 'voxscale[{extra}]')")
        missing.set_defaults(func=lambda _: _missing_extra(name, extra, reason))


def _missing_extra(name: str, extra: str, reason: str) -> int:
    sys.stderr.write(f"voxscale {name}: {reason}. Install it with: pip install 'voxscale[{extra}]'\n")
    return 2


def _register_replay(sub: Any) -> None:
    from voxscale.replay import cli as replay

    replay.add_parser(sub)


def _dev_cluster(args: argparse.Namespace) -> int:
    from voxscale.devcluster.commands import cluster_down, cluster_up

    state = Path(args.state_dir) if args.state_dir else None
    return cluster_up(state) if args.action == "up" else cluster_down(state)


def _register_demo(sub: Any) -> None:
    from voxscale.demo import cli as demo

    demo.add_parser(sub)


def _register_worker(sub: Any) -> None:
    from voxscale.worker import serve

    serve.add_parser(sub).set_defaults(func=serve.run)


def _register_loadgen(sub: Any) -> None:
    from voxscale.worker import loadgen

    loadgen.add_parser(sub).set_defaults(func=loadgen.run)


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

    dev = sub.add_parser("dev", help="developer tools").add_subparsers(dest="dev_command", required=True)
    cluster = dev.add_parser("cluster", help="a local control plane with kwok GPU nodes (for e2e and demo)")
    cluster.add_argument("action", choices=["up", "down"])
    cluster.add_argument("--state-dir", help="where certificates, logs and the kubeconfig live")
    cluster.set_defaults(func=_dev_cluster)

    _optional(_register_replay, sub, "replay", "dev")
    _optional(_register_demo, sub, "demo", "dev")
    worker = sub.add_parser("worker", help="the Triton worker side (needs the worker extra)")
    _optional(
        _register_worker, worker.add_subparsers(dest="worker_command", required=True), "serve", "worker"
    )
    _optional(_register_loadgen, sub, "loadgen", "worker")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    raise SystemExit(main())
