"""Reading SpeechCluster manifests from files (examples, the demo, the CLI) into typed models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from voxscale import names
from voxscale.api import SpeechClusterSpec, parse_spec
from voxscale.render.common import Owner


@dataclass(frozen=True)
class Manifest:
    name: str
    namespace: str
    spec: SpeechClusterSpec

    def owner(self, uid: str) -> Owner:
        return Owner(name=self.name, namespace=self.namespace, uid=uid)


def load_manifest(path: Path) -> Manifest:
    """The first SpeechCluster document of a YAML file, validated."""
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind") == names.KIND:
            meta = doc.get("metadata") or {}
            return Manifest(
                name=str(meta["name"]),
                namespace=str(meta.get("namespace", "default")),
                spec=parse_spec(doc.get("spec") or {}),
            )
    raise ValueError(f"{path}: no {names.KIND} document found")
