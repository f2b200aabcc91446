"""Find (or build once, via e2e/cluster/build.sh) the control-plane binaries and kubectl."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from voxscale_lab.devcluster.process import ClusterError

REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# operator/voxscale_lab/devcluster/binaries.py → the checkout's root.
REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "e2e" / "cluster" / "build.sh"


def ensure_binaries(required: tuple[str, ...] = REQUIRED, build_log: Path | None = None) -> Path:
    """The directory holding `required` (+ helm); builds them first if needed (cold: ~14 min).

    VOXSCALE_E2E_BIN points at a ready directory and skips the build script entirely.
    """
    preset = os.environ.get("VOXSCALE_E2E_BIN")
    if preset:
        bin_dir = Path(preset)
    else:
        if not BUILD_SCRIPT.is_file():
            raise ClusterError(f"{BUILD_SCRIPT} is missing: run from a voxscale checkout")
        out = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise ClusterError(f"{BUILD_SCRIPT} failed:\n{out.stderr[-3000:]}")
        if build_log is not None:
            build_log.write_text(out.stderr)
        bin_dir = Path(out.stdout.strip().splitlines()[-1])
    missing = [b for b in required if not (bin_dir / b).is_file()]
    if missing:
        raise ClusterError(f"{bin_dir} lacks {', '.join(missing)}: run {BUILD_SCRIPT}")
    return bin_dir


def kubectl_path(bin_dir: Path) -> str:
    """The kubectl built next to the control plane (only when PATH had none in skew), else PATH's."""
    own = bin_dir / "kubectl"
    if own.is_file():
        return str(own)
    found = shutil.which("kubectl")
    if found is None:
        raise ClusterError(f"no kubectl on PATH nor in {bin_dir}: rerun {BUILD_SCRIPT}")
    return found
