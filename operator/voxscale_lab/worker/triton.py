"""Locate the tritonserver shipped in the nvidia-pytriton wheel and build its command and environment."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from voxscale.api import SpeechClusterSpec
from voxscale.render.deployment import triton_args

INSTALL_HINT = "pip install -e '.[worker]'  (nvidia-pytriton, tritonclient[grpc,http], ...)"


@dataclass(frozen=True)
class Ports:
    http: int
    grpc: int
    metrics: int


@dataclass(frozen=True)
class TritonDist:
    """The server binary, its Python backend and the stub built for this interpreter."""

    binary: Path
    python_backend: Path
    stub: Path
    libs: Path


def find_dist() -> TritonDist:
    """The tritonserver of the installed wheel, or a RuntimeError that says what to install."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"tritonserver not found: the worker extra is not installed; run {INSTALL_HINT}")
    root = Path(spec.origin).parent
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    dist = TritonDist(
        binary=root / "tritonserver" / "bin" / "tritonserver",
        python_backend=root / "tritonserver" / "backends" / "python",
        stub=root / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub",
        libs=root.parent / "nvidia_pytriton.libs",
    )
    missing = [p for p in (dist.binary, dist.python_backend, dist.stub) if not p.exists()]
    if missing:
        raise RuntimeError(f"nvidia-pytriton is incomplete (missing {missing}); reinstall: {INSTALL_HINT}")
    return dist


def prepare_backends(dist: TritonDist, workdir: Path) -> Path:
    """A backend directory whose python backend carries the stub for this Python version.

    The wheel ships one stub per Python minor version; Triton looks for the stub next to
    libtriton_python.so, so we assemble that pair in our own directory (as pytriton does).
    """
    backends = workdir / "backends"
    target = backends / "python"
    if not target.exists():
        shutil.copytree(dist.python_backend, target, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(dist.stub, target / "triton_python_backend_stub")
    return backends


def triton_env(dist: TritonDist, base: dict[str, str]) -> dict[str, str]:
    """The environment the Python-backend stub needs under a non-system (pyenv, venv) Python.

    The stub links `libpython3.x.so` without a path: with this interpreter's LIBDIR first it
    loads the same build as the site-packages it imports (checked in /proc/<stub>/maps);
    otherwise it takes the system's libpython 3.11, a different build, which has been seen
    to die with an `_thread.RLock` error. PYTHONPATH carries this interpreter's
    site-packages (numpy, torch, ...), which an embedded interpreter would not find.
    """
    env = dict(base)
    libdir = str(sysconfig.get_config_var("LIBDIR") or "")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (libdir, str(dist.libs), base.get("LD_LIBRARY_PATH", "")) if p
    )
    site = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in (*site, base.get("PYTHONPATH", "")) if p))
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), base.get("PATH", "")))
    return env


def triton_command(
    spec: SpeechClusterSpec, dist: TritonDist, backends: Path, ports: Ports, shm_prefix: str
) -> list[str]:
    """The operator's rendered command line, with local ports and the wheel's directories.

    Every flag the Deployment passes is kept as rendered; only the port numbers change (so
    several workers fit on one host) and the wheel's backend directory is added.
    """
    local = {
        "--http-port": str(ports.http),
        "--grpc-port": str(ports.grpc),
        "--metrics-port": str(ports.metrics),
    }
    args = []
    for arg in triton_args(spec)[1:]:
        flag = arg.split("=", 1)[0]
        args.append(f"{flag}={local[flag]}" if flag in local else arg)
    return [
        str(dist.binary),
        *args,
        f"--backend-directory={backends}",
        # Python-backend shared-memory regions are per host: a unique prefix per worker.
        f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
    ]


def free_ports() -> Ports:
    """Three ports that were free a moment ago (for tests and several workers on one host)."""
    import socket

    sockets = [socket.socket() for _ in range(3)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        http, grpc, metrics = (int(s.getsockname()[1]) for s in sockets)
    finally:
        for s in sockets:
            s.close()
    return Ports(http, grpc, metrics)
