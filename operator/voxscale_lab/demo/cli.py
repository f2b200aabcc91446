"""The `voxscale demo` subcommand: the live closed loop by default, `--plan` for the offline replay."""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from voxscale.manifest import load_manifest

LIVE_MANIFEST = "examples/demo-speechcluster.yaml"
PLAN_MANIFEST = "examples/speechcluster.yaml"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="autoscale a live local speech cluster through a real traffic trace (--plan: offline)",
        description="Start a local control plane with simulated GPU nodes, Prometheus, the Helm chart "
        "and the operator; run one real Triton worker per pod and replay a compressed real trace per "
        "shard; show the loop live and summarise. With --plan: render the manifest's objects and "
        "replay the traces through decide() offline instead.",
    )
    p.add_argument("manifest", nargs="?", help=f"default: {LIVE_MANIFEST} (live), {PLAN_MANIFEST} (--plan)")
    p.add_argument("--plan", action="store_true", help="the offline plan mode (no cluster, no Triton)")
    p.add_argument("--minutes", type=float, default=10.0,
                   help="live: minutes of traffic (10 = one compressed day)")
    p.add_argument("--traces", type=Path, default=Path("examples/traces"))
    p.add_argument("--hours", type=float, help="hours of each trace to replay (implies --plan; default 24)")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for the PNG plots")
    p.add_argument("--workdir", type=Path, help="live: keep logs and state here (default: a temp dir)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Piped output (CI logs, `tee`) gets a width the tables fit in.
    console = Console() if Console().is_terminal else Console(width=150)
    # --hours only means something to the offline replay, so it selects plan mode too.
    if args.plan or args.hours is not None:
        from voxscale_lab.demo.plan import run_plan

        manifest = load_manifest(Path(args.manifest or PLAN_MANIFEST))
        hours = 24.0 if args.hours is None else args.hours
        return run_plan(manifest, traces=args.traces, hours=hours, out=args.out, console=console)
    return run_live_command(args, console)


def preflight() -> str | None:
    """What is missing for a live run (Triton, its client, Prometheus), said with the fix; None if nothing."""
    import importlib.util

    from voxscale_lab.harness.prometheus import MissingBinaryError, require_binary
    from voxscale_lab.worker.triton import INSTALL_HINT, find_dist

    try:
        find_dist()
        if importlib.util.find_spec("tritonclient") is None:
            return f"tritonclient is not installed: {INSTALL_HINT}"
        require_binary("prometheus")
        require_binary("promtool")
    except (RuntimeError, MissingBinaryError) as e:
        return str(e)
    return None


def run_live_command(args: argparse.Namespace, console: Console) -> int:
    from voxscale_lab.demo.live import DemoOptions, run_live

    missing = preflight()
    if missing:
        console.print(f"[red]voxscale demo cannot run live:[/] {missing}\n"
                      "(`voxscale demo --plan` needs none of it)")
        return 2

    opts = DemoOptions(Path(args.manifest or LIVE_MANIFEST), args.minutes, args.out, args.traces)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="voxscale-demo-"))
    workdir = workdir.resolve()
    try:
        summary = run_live(opts, console, workdir)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: everything was stopped[/]")
        _check_nothing_left(workdir, console)
        return 130
    for line in summary.lines():
        console.print(line)
    console.print(f"plot: {opts.out / 'demo-live.png'}; logs: {workdir}")
    return 0 if _check_nothing_left(workdir, console) else 1


def _ancestors() -> set[int]:
    """This process and its parents (their command lines name the work dir too)."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def leftover_processes(workdir: Path) -> list[str]:
    """`pgrep -af` lines of processes whose command line names the demo's work dir (workers, control
    plane, Prometheus, operator), this process and its parents excepted."""
    found = subprocess.run(["pgrep", "-af", str(workdir)], capture_output=True, text=True, check=False)
    mine = _ancestors()
    return [line for line in found.stdout.splitlines() if int(line.split()[0]) not in mine]


def _check_nothing_left(workdir: Path, console: Console) -> bool:
    left = leftover_processes(workdir)
    if left:
        console.print(f"[red]left running:[/] {left}")
    else:
        console.print("teardown: no process left (pgrep)")
    return not left
