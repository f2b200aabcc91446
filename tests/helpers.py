"""Small builders shared by the unit tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from voxscale.api import SpeechClusterSpec, parse_spec
from voxscale.decide.types import PodCounts
from voxscale.k8s import ShardPods

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


@dataclass
class RecordingKube:
    """Kube's surface for a tick and for _metrics_source, recording every write."""

    secrets: dict[tuple[str, str, str], str]
    statuses: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    replicas: dict[str, int] = field(default_factory=dict)

    def read_secret_key(self, namespace: str, name: str, key: str) -> str:
        return self.secrets[(namespace, name, key)]

    def read_shard(self, namespace: str, cluster: str, shard: str) -> ShardPods:
        desired = self.replicas.setdefault(f"{cluster}-{shard}", 2)
        return ShardPods(True, PodCounts(desired, desired, 0, 0, 0))

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.replicas[deployment] = replicas

    def hpa_targets(self, namespace: str) -> dict[str, str]:
        return {}

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.statuses.append(status)

    def event(self, owner: dict[str, Any], type_: str, reason: str, message: str, now: datetime) -> None:
        self.events.append((type_, reason, message))
