"""Imports run one way: the shared seams (``homecall``) import none of the product's other
packages, the parts (``gateway``, ``central``, ``firmware_sim``) never import the
orchestration on top of them, and the simulator never imports the gateway (it must encode
its frames with its own code). Read from the source, so an import inside a function counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: package -> top-level packages of this project it must never import
FORBIDDEN = {
    "homecall": {"gateway", "central", "firmware_sim", "orchestration", "tests"},
    "gateway": {"central", "firmware_sim", "orchestration", "tests"},
    "central": {"firmware_sim", "orchestration", "tests"},
    "firmware_sim": {"gateway", "central", "orchestration", "tests"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_run_one_way(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from orchestration.stack import Stack\n")
    assert _imports(source) == [(2, "orchestration.stack")]
