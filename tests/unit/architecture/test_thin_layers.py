"""The API and the CLI ask models, they do not look inside them: no private name of another object is read
there (``model._score``, ``part._state``...), and nothing private is imported from the library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import personas

SRC = Path(personas.__file__).parent
THIN = sorted((SRC / "api").rglob("*.py")) + sorted((SRC / "cli").rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(path: Path) -> list[str]:
    """``file:line name`` for each private attribute read on something other than self/cls, and each private
    name imported from another personas module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("personas"):
            same_layer = (node.module or "").startswith(("personas.api", "personas.cli"))
            for alias in node.names:
                if _private(alias.name) and not same_layer:
                    found.append(f"{path.name}:{node.lineno} import {alias.name}")
    return found


def test_the_rule_finds_private_uses(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from personas.recommend.base import _x\nmodel._score(1)\nself._ok = 1\nx.__len__()\n")
    assert private_uses(sample) == ["sample.py:1 import _x", "sample.py:2 ._score"]


@pytest.mark.parametrize("path", THIN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_api_and_cli_use_public_names_only(path: Path) -> None:
    assert private_uses(path) == []
