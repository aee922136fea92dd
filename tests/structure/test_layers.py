"""The packages' imports point one way (docs/architecture.md):

    maskloop.cli -> server.http -> server.jobs -> server.store -> core (maskloop/*.py)
                                        |-> engine -> exporter -> core

``maskloop.cli`` is the composition root and may import anything. A lower layer importing a higher
one (even lazily, inside a function) fails here, with the file and line that does it. Two more
rules keep the layers honest: only ``server/http`` imports Flask, and only ``server/store`` runs
SQL (calls ``.execute``/``.executemany``); nothing under ``server/`` parses arguments.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Layer -> the layers it may import besides itself and the core modules (``maskloop/*.py``).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "exporter": set(),
    "engine": {"exporter"},
    "server.store": set(),
    "server.settings": {"server.store"},
    "server.jobs": {"server.store", "server.settings", "engine", "exporter"},
    "server.http": {"server.jobs", "server.store", "server.settings", "engine", "exporter"},
    "server": set(),  # server/__init__.py: a docstring
    "cli": {"server.http", "server.jobs", "server.store", "server.settings", "engine", "exporter"},
}


def layer_of_module(name: str) -> str | None:
    """The layer of a dotted module name under ``maskloop`` (None: not maskloop's)."""
    parts = name.split(".")
    if parts[0] != "maskloop":
        return None
    if len(parts) == 1:
        return "core"
    head = parts[1]
    if head in ("exporter", "engine", "cli"):
        return head
    if head == "server":
        if len(parts) == 2:
            return "server"
        return f"server.{parts[2]}" if parts[2] in ("http", "jobs", "store", "settings") else "server"
    return "core"  # maskloop.errors, maskloop.masks, ...


def layer_of_path(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    if rel[0] == "maskloop":
        return "cli" if rel[1] == "cli" else "core"
    if rel[0] in ("exporter", "engine"):
        return rel[0]
    if rel[1] == "__init__.py":
        return "server"
    if rel[1] == "settings.py":
        return "server.settings"
    return f"server.{rel[1]}"


def package_files() -> list[Path]:
    return sorted(p for folder in ("maskloop", "exporter", "engine", "server") for p in (ROOT / folder).rglob("*.py"))


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of every absolute import, at any depth (``from a import b`` yields ``a`` and ``a.b``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def wrong_imports(path: Path, tree: ast.AST) -> list[str]:
    me = layer_of_path(path)
    wrong = []
    for line, name in imported_modules(tree):
        layer = layer_of_module(name)
        if layer is None or layer in ("core", me) or layer in ALLOWED[me]:
            continue
        wrong.append(f"{path.relative_to(ROOT)}:{line} ({me}) imports {name} ({layer})")
    return sorted(set(wrong))


def test_every_file_has_a_layer() -> None:
    for path in package_files():
        assert layer_of_path(path) in ALLOWED, path


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_one_way(layer: str) -> None:
    wrong = []
    for path in package_files():
        if layer_of_path(path) == layer:
            wrong += wrong_imports(path, ast.parse(path.read_text(), str(path)))
    assert not wrong, "\n".join(wrong)


def test_the_rule_catches_a_wrong_import() -> None:
    """The checker itself: a store module importing a job, or a job importing Flask's layer, is caught."""
    store_file = ROOT / "server" / "store" / "db.py"
    job_file = ROOT / "server" / "jobs" / "model.py"
    assert wrong_imports(store_file, ast.parse("def f():\n    from maskloop.server.jobs import catalog\n"))
    assert wrong_imports(job_file, ast.parse("from maskloop.server.http.json_api import fail\n"))
    assert wrong_imports(ROOT / "engine" / "learn.py", ast.parse("import maskloop.server.store.db\n"))
    assert not wrong_imports(job_file, ast.parse("from maskloop.server.store import dataset\n"))


def test_only_the_http_layer_imports_flask() -> None:
    wrong = []
    for path in package_files():
        if layer_of_path(path) == "server.http":
            continue
        for line, name in imported_modules(ast.parse(path.read_text(), str(path))):
            if name.split(".")[0] in ("flask", "werkzeug"):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_only_the_store_runs_sql() -> None:
    wrong = []
    for path in package_files():
        if layer_of_path(path) == "server.store":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "executemany", "executescript")
            ):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} calls .{node.func.attr}(...)")
    assert not wrong, "\n".join(wrong)


def test_the_server_parses_no_arguments() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in package_files()
        if layer_of_path(path).startswith("server")
        for line, name in imported_modules(ast.parse(path.read_text(), str(path)))
        if name == "argparse"
    ]
    assert not wrong, "\n".join(wrong)


def test_server_top_level_holds_at_most_two_modules() -> None:
    top = sorted(p.name for p in (ROOT / "server").glob("*.py"))
    assert len(top) <= 2, top


def test_no_python_module_over_400_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in package_files()
        if (n := len(path.read_text().splitlines())) > 400
    ]
    assert not long, "\n".join(long)
