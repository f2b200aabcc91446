"""Small builders shared by the unit tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from voxscale.api import SpeechClusterSpec, parse_spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "speechcluster.yaml"


def example_doc() -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(doc, dict)
    return doc


def spec_with(**overrides: Any) -> SpeechClusterSpec:
    """The example spec with top-level sections replaced, e.g. spec_with(slo={...})."""
    raw = copy.deepcopy(example_doc()["spec"])
    raw.update(overrides)
    return parse_spec(raw)
