"""`voxscale dev cluster up|down|status`: the local cluster as a long-lived developer tool."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from voxscale_lab.devcluster.cluster import STATE_FILE, LocalCluster, up
from voxscale_lab.devcluster.process import ClusterError, alive


def default_state_dir() -> Path:
    cache = Path(os.environ.get("VOXSCALE_CACHE", Path.home() / ".cache" / "voxscale"))
    return cache / "devcluster"


def cluster_up(state_dir: Path | None = None) -> int:
    """Start the cluster (unless one already runs there) and print how to use it."""
    state_dir = state_dir or default_state_dir()
    if (state_dir / STATE_FILE).exists():
        running = LocalCluster.load(state_dir)
        if all(alive(p.pid) for p in running.procs):
            print(f"already running; export KUBECONFIG={running.kubeconfig}")
            return 0
        running.down()
    try:
        cluster = up(state_dir)
    except ClusterError as e:
        print(f"voxscale dev cluster up: {e}", file=sys.stderr)
        return 1
    print(f"cluster up in {cluster.start_seconds} s: {cluster.server}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def cluster_down(state_dir: Path | None = None) -> int:
    """Stop the cluster started by `cluster_up` and check nothing is left running or listening."""
    state_dir = state_dir or default_state_dir()
    if not (state_dir / STATE_FILE).exists():
        print(f"no cluster state in {state_dir}: nothing to stop")
        return 0
    try:
        LocalCluster.load(state_dir).down()
    except ClusterError as e:
        print(f"voxscale dev cluster down: {e}", file=sys.stderr)
        return 1
    print("cluster down: no process or port left")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voxscale_lab.devcluster")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="certs, kubeconfigs, logs, etcd data (default: ~/.cache/voxscale/devcluster)")
    args = parser.parse_args(argv)
    return cluster_up(args.state_dir) if args.action == "up" else cluster_down(args.state_dir)
