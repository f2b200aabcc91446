"""The two test trees stay apart: tests/ never imports e2e, e2e/ never imports tests.

What both need (operator process, Prometheus, ports, backfill, polling, manifests) lives in the
lab's harness, `voxscale_lab.harness`. import-linter cannot say this: tests/ and e2e/ are not
among its root packages, so the imports are read here with `ast`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_roots(path: Path) -> set[str]:
    """The top-level names `path` imports (absolute imports only; relative ones stay in its tree)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_imported_roots_sees_plain_from_and_nested_imports_but_not_relative_ones(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("import a.b\nfrom c.d import e\nfrom . import f\n\ndef g():\n    import h\n")
    assert imported_roots(source) == {"a", "c", "h"}


@pytest.mark.parametrize(("tree", "forbidden"), [("tests", "e2e"), ("e2e", "tests")])
def test_a_test_tree_never_imports_the_other(tree: str, forbidden: str) -> None:
    files = sorted((ROOT / tree).rglob("*.py"))
    assert files, f"no Python files under {tree}/"
    offenders = [str(f.relative_to(ROOT)) for f in files if forbidden in imported_roots(f)]
    assert offenders == [], f"{tree}/ imports {forbidden}; move what they share to voxscale_lab.harness"
