"""The packages' imports point one way: core (``maskloop/*.py``) <- exporter <- engine <- server.

``maskloop.cli`` is the composition root and may import anything. A lower layer importing a higher
one (even lazily, inside a function) fails here, with the file and line that does it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Folder -> the maskloop packages it may import (besides itself and the core modules).
ALLOWED = {
    "maskloop": set(),
    "exporter": set(),
    "engine": {"exporter"},
    "server": {"exporter", "engine"},
}
SUBPACKAGES = {"exporter", "engine", "server"}


def maskloop_imports(path: Path) -> list[tuple[int, str]]:
    """(line, sub-package) for every ``maskloop.<sub-package>`` import in ``path``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "maskloop" and len(parts) > 1 and parts[1] in SUBPACKAGES:
                found.append((node.lineno, parts[1]))
    return found


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_imports_point_one_way(folder: str) -> None:
    wrong = []
    for path in sorted((ROOT / folder).glob("*.py")):
        if folder == "maskloop" and path.name == "cli.py":
            continue
        for line, package in maskloop_imports(path):
            if package != folder and package not in ALLOWED[folder]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports maskloop.{package}")
    assert not wrong, "\n".join(wrong)
