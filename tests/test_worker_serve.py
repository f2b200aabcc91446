"""`worker serve` assembles the rendered config and command line for the wheel's tritonserver."""

from __future__ import annotations

import importlib.util
import json
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

from voxscale.render.configmap import render_model_config
from voxscale.render.deployment import triton_args
from voxscale_lab.worker.serve import DEFAULT_MODEL_DIR, prepare_repository, worker_spec
from voxscale_lab.worker.triton import Ports, TritonDist, triton_command, triton_env

from .helpers import spec_with

DIST = TritonDist(Path("/w/bin/tritonserver"), Path("/w/backends/python"), Path("/w/stub"), Path("/w/libs"))
PORTS = Ports(http=18000, grpc=18001, metrics=18002)


def _standin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("standin", DEFAULT_MODEL_DIR / "1" / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_command_is_the_rendered_one_with_local_ports_and_the_wheels_backends() -> None:
    spec = worker_spec("asr-standin")
    argv = triton_command(spec, DIST, Path("/tmp/b"), PORTS, "p_")
    local = {
        "--http-port": "--http-port=18000",
        "--grpc-port": "--grpc-port=18001",
        "--metrics-port": "--metrics-port=18002",
    }
    rendered = [local.get(a.split("=")[0], a) for a in triton_args(spec)[1:]]
    assert argv[0] == "/w/bin/tritonserver"
    assert argv[1 : len(rendered) + 1] == rendered
    assert "--backend-directory=/tmp/b" in argv


def test_a_manifest_spec_runs_on_cpu_with_its_own_batching() -> None:
    spec = worker_spec("asr-standin", spec_with(batching={"maxBatchSize": 16, "preferredBatchSizes": [4]}))
    config = render_model_config(spec)
    assert "kind: KIND_CPU" in config
    assert "max_batch_size: 16" in config
    assert "preferred_batch_size: [ 4 ]" in config
    assert 'backend: "python"' in config


def test_batch_size_one_leaves_no_preferred_batch_sizes() -> None:
    config = render_model_config(worker_spec("asr-standin", max_batch_size=1))
    assert "max_batch_size: 1" in config
    assert "preferred_batch_size" not in config


def test_the_stub_finds_this_interpreters_libpython_first() -> None:
    env = triton_env(DIST, {"LD_LIBRARY_PATH": "/usr/lib", "PATH": "/bin"})
    libdir = sysconfig.get_config_var("LIBDIR")
    assert env["LD_LIBRARY_PATH"].split(":") == [libdir, "/w/libs", "/usr/lib"]
    assert sysconfig.get_paths()["purelib"] in env["PYTHONPATH"].split(":")


def test_the_repository_holds_the_rendered_config_and_the_requested_load_delay(tmp_path: Path) -> None:
    spec, repo = prepare_repository(DEFAULT_MODEL_DIR, worker_spec("asr-standin"), tmp_path, 7.5)
    assert (repo / "asr-standin" / "config.pbtxt").read_text() == render_model_config(spec)
    assert spec.model.repository == str(repo)
    profile = json.loads((repo / "asr-standin" / "1" / "profile.json").read_text())
    assert profile["load_seconds"] == 7.5


@pytest.mark.parametrize(
    ("batch", "seconds"),
    [(1, 0.056), (8, 0.098), (32, 0.242)],
    ids=["alone", "preferred-8", "full-32"],
)
def test_the_standin_batch_costs_a_fixed_part_plus_a_small_part_per_item(batch: int, seconds: float) -> None:
    standin = _standin()
    profile = standin.load_profile(str(DEFAULT_MODEL_DIR), "1")
    assert standin.batch_seconds(profile, batch) == pytest.approx(seconds)


def test_the_standin_says_it_is_a_standin() -> None:
    assert "stand-in" in _standin().transcript(16_000, 4)


def test_a_missing_worker_extra_is_an_error_that_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from voxscale_lab.worker import triton

    monkeypatch.setattr(triton.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[worker\]'"):
        triton.find_dist()
