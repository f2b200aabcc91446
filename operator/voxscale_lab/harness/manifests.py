"""The repository's manifests as the tests use them: the CRD installed and Established, the example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from voxscale_lab.devcluster import Kubectl
from voxscale_lab.harness.waiting import eventually

# A source checkout (the lab is installed editable): the CRD and example are not package data.
REPO = Path(__file__).resolve().parents[3]
CRD_FILE = REPO / "crds" / "speechcluster.yaml"
EXAMPLE_FILE = REPO / "examples" / "speechcluster.yaml"


def install_crd(kubectl: Kubectl, path: Path = CRD_FILE, timeout: float = 60.0) -> dict[str, Any]:
    """Apply the CRD file (server-side) and wait until it is Established; returns the stored CRD."""
    crd = yaml.safe_load(path.read_text())
    kubectl.apply(crd, server_side=True)
    name = crd["metadata"]["name"]

    def established() -> dict[str, Any] | None:
        stored: dict[str, Any] = kubectl.json("get", "crd", name)
        conditions = {c["type"]: c for c in (stored.get("status") or {}).get("conditions") or []}
        bad = conditions.get("NamesAccepted", {}).get("status") == "False"
        assert not bad, f"CRD names not accepted: {conditions['NamesAccepted'].get('message')}"
        return stored if conditions.get("Established", {}).get("status") == "True" else None

    return eventually(f"CRD {name} Established", established, timeout)


def example_speechcluster(namespace: str) -> dict[str, Any]:
    """examples/speechcluster.yaml, moved into `namespace`."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE_FILE.read_text())
    doc["metadata"]["namespace"] = namespace
    return doc
