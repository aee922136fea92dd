"""The word lists the schema's CHECK constraints allow are the ones the Python code uses.

A stage, status, role or review value lives in two places: a ``CHECK (column IN (...))`` in the
SQL (schema.sql and the migrations) and a tuple in Python that the API validates against. These
tests read the SQL and fail when the two drift apart, so adding a stage in one place only is caught
before a user's insert fails with a database error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from maskloop.engine.stats import STAGES
from maskloop.server.jobs.coco import REVIEWS
from maskloop.server.store.accounts import ROLES
from maskloop.server.store.annotations import STATUSES

SERVER = Path(__file__).resolve().parents[2] / "server" / "store"
CHECK_IN = re.compile(r"CHECK\s*\(\s*(\w+)\s+IN\s*\(([^)]*)\)\s*\)", re.IGNORECASE)


def allowed_values() -> dict[str, list[set[str]]]:
    """Column name → the value sets of every ``CHECK (column IN (...))`` in the server's SQL."""
    found: dict[str, list[set[str]]] = {}
    for sql in [SERVER / "schema.sql", *sorted((SERVER / "migrations").glob("*.sql"))]:
        for column, values in CHECK_IN.findall(sql.read_text()):
            words = {word.strip().strip("'") for word in values.split(",")}
            found.setdefault(column, []).append(words)
    return found


@pytest.mark.parametrize(
    ("column", "python_values"),
    [
        ("stage", set(STAGES)),
        ("status", set(STATUSES)),
        ("role", set(ROLES)),
        ("review", set(REVIEWS) - {"unreviewed"}),  # unreviewed is NULL in the store
        ("decision", set(REVIEWS) - {"unreviewed"}),
    ],
)
def test_check_constraint_matches_python(column: str, python_values: set[str]) -> None:
    constraints = allowed_values().get(column)
    assert constraints, f"no CHECK ({column} IN ...) found in the server's SQL"
    for values in constraints:
        assert values == python_values, f"{column}: SQL allows {sorted(values)}, Python {sorted(python_values)}"
