"""The SQLite store's settings and schema versioning."""

from __future__ import annotations

import sqlite3

import pytest

from maskloop.errors import UserError
from maskloop.server.db import SCHEMA_VERSION, open_database, transaction


def test_settings_and_schema(tmp_path):
    conn = open_database(tmp_path / "w" / "maskloop.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"image", "category", "annotation"} <= tables
    with pytest.raises(sqlite3.IntegrityError):  # foreign keys are enforced
        with transaction(conn):
            conn.execute(
                "INSERT INTO annotation (image_id, category_id, rle_counts, rle_height, rle_width, area, bbox,"
                " created, updated) VALUES (99, 99, '01', 1, 1, 1, '[0,0,1,1]', 'x', 'x')"
            )
    conn.close()
    open_database(tmp_path / "w" / "maskloop.db").close()  # reopening an up-to-date store is a no-op


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "maskloop.db"
    open_database(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(UserError, match="newer maskloop"):
        open_database(path)


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "maskloop.db"
    path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(UserError, match="cannot open the database"):
        open_database(path)
