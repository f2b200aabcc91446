"""A thin kubectl runner bound to one kubeconfig, plus service-account kubeconfigs for RBAC tests."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class KubectlError(RuntimeError):
    """kubectl exited non-zero; `stderr` holds the API server's message."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)} exited {returncode}: {stderr.strip()}")
        self.args_ = args
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True)
class Kubectl:
    """`kubectl --kubeconfig <kubeconfig> …` with text in, text out."""

    binary: str
    kubeconfig: Path
    timeout: float = 120.0

    def run(self, *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, f"--kubeconfig={self.kubeconfig}", *args]
        out = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=self.timeout,
                             check=False)
        if check and out.returncode != 0:
            raise KubectlError(list(args), out.returncode, out.stderr)
        return out

    def json(self, *args: str) -> Any:
        """`kubectl <args> -o json`, parsed."""
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply(self, *objects: dict[str, Any], server_side: bool = False) -> str:
        """Apply manifests given as dicts (strict field validation: unknown fields are errors)."""
        text = yaml.safe_dump_all(objects, sort_keys=False)
        flags = ["--server-side", "--field-manager=voxscale-e2e"] if server_side else []
        return self.run("apply", "--validate=strict", *flags, "-f", "-", stdin=text).stdout

    def with_kubeconfig(self, kubeconfig: Path) -> Kubectl:
        return Kubectl(self.binary, kubeconfig, self.timeout)

    def kubeconfig_for_service_account(self, namespace: str, name: str, out_dir: Path,
                                       duration: str = "1h") -> Path:
        """Mint a token for `namespace/name` (TokenRequest API) and write a kubeconfig using it.

        The cluster entry (server, CA) is copied from our own kubeconfig, so this works for the
        local control plane and for E2E_KUBECONFIG clusters alike.
        """
        token = self.run("create", "token", name, "-n", namespace,
                         f"--duration={duration}").stdout.strip()
        view = yaml.safe_load(self.run("config", "view", "--raw", "--minify", "--flatten").stdout)
        cluster = view["clusters"][0]
        user = f"system:serviceaccount:{namespace}:{name}"
        config = {
            "apiVersion": "v1", "kind": "Config", "clusters": [cluster],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
            "current-context": user,
        }
        path = out_dir / f"sa-{namespace}-{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path
