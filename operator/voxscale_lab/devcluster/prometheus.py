"""Moved to `voxscale_lab.harness`; these names stay here for the demo's bridge and preflight."""

from __future__ import annotations

from voxscale_lab.harness.ports import free_port
from voxscale_lab.harness.prometheus import MissingBinaryError, require_binary

__all__ = ["MissingBinaryError", "free_port", "require_binary"]
