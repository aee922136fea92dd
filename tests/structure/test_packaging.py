"""Every folder of code or SQL is a package in pyproject's ``[tool.setuptools] packages``.

``maskloop.server`` lives in ``server/`` (and so on), so setuptools cannot discover packages by
folder name and they are listed by hand. The editable install the tests run on finds an unlisted
sub-package anyway; a built wheel would silently lack it. This test is what notices.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_folders() -> dict[str, Path]:
    """Dotted name -> folder for every folder under a mapped package that holds .py or .sql files."""
    found = {}
    for name, folder in CONFIG["package-dir"].items():
        root = ROOT / folder
        for path in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            if "__pycache__" in path.parts or not any(path.glob("*.py")) and not any(path.glob("*.sql")):
                continue
            relative = path.relative_to(root).parts
            found[".".join((name, *relative))] = path
    return found


def test_every_code_folder_is_a_listed_package():
    missing = sorted(set(package_folders()) - set(CONFIG["packages"]))
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_every_listed_package_has_a_folder():
    folders = package_folders()
    stale = [name for name in CONFIG["packages"] if name not in folders]
    assert not stale, f"[tool.setuptools] packages names folders that hold no code: {stale}"
