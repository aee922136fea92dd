"""The store's settings and schema versioning on SQLite and PostgreSQL; ``db migrate`` and ``db copy``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from support.data import make_data_dir, square_mask

from maskloop import masks
from maskloop.errors import UserError
from maskloop.server.store.db import SCHEMA_VERSION, IntegrityError, open_database, transaction


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


# -- PostgreSQL, and moving a store between backends -------------------------------------------
def test_postgres_schema_and_versioning(pg_cluster):
    from maskloop.server.store.db import PgConnection, schema_version

    url = pg_cluster.create_database("schema_test")
    conn = open_database(url)
    assert isinstance(conn, PgConnection) and schema_version(conn) == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"image", "category", "annotation", "maskloop_schema"} <= tables
    with pytest.raises(IntegrityError):  # foreign keys are enforced
        with transaction(conn):
            conn.execute(
                "INSERT INTO annotation (image_id, category_id, rle_counts, rle_height, rle_width, area, bbox,"
                " created, updated) VALUES (99, 99, '01', 1, 1, 1, '[0,0,1,1]', 'x', 'x')"
            )
    assert conn.execute("SELECT count(*) FROM annotation").fetchone()[0] == 0  # rolled back
    conn.close()
    open_database(url).close()  # reopening an up-to-date store is a no-op
    conn = open_database(url)
    conn.execute("UPDATE maskloop_schema SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(UserError, match="newer maskloop"):
        open_database(url)


def test_postgres_upgrades_an_old_schema(pg_cluster):
    """A version-1 store (no model_version column) is upgraded by the same migrations as SQLite."""
    import psycopg

    from maskloop.server.store.db import pg_dialect

    url = pg_cluster.create_database("upgrade_test")
    schema_v1 = pg_dialect(
        (Path(__file__).parents[2] / "server" / "store" / "schema.sql")
        .read_text()
        .replace("    model_version   TEXT,", "")
    )
    with psycopg.connect(url, autocommit=True) as raw:
        raw.execute(schema_v1)
        raw.execute("CREATE TABLE maskloop_schema (version INTEGER NOT NULL); INSERT INTO maskloop_schema VALUES (1)")
    conn = open_database(url)
    columns = {
        r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name='annotation'")
    }
    assert "model_version" in columns
    assert conn.execute("SELECT version FROM maskloop_schema").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_an_unreachable_postgres_is_one_line(tmp_path):
    url = f"postgresql://maskloop:secret@/nowhere?host={tmp_path}&port=1"
    with pytest.raises(UserError, match=r"cannot open the database postgresql://maskloop:\*\*\*@/nowhere") as err:
        open_database(url)
    assert "secret" not in str(err.value) and "\n" not in str(err.value)


def test_db_migrate_and_copy_keep_the_coco_export(tmp_path, pg_cluster, capsys):
    """``db copy`` SQLite -> PostgreSQL: identical COCO export, ids continue, a full target is refused."""
    from maskloop.cli import main
    from maskloop.server.jobs.coco import export_coco
    from maskloop.server.jobs.project import open_store
    from maskloop.server.store.annotations import insert_annotation
    from maskloop.server.store.categories import ensure_category
    from maskloop.server.store.ratings import set_rating

    data = make_data_dir(tmp_path / "data", bad=True)
    sqlite_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(data, tmp_path / "work", db=sqlite_url, progress=False)
    conn = store.conn
    ids = {r["file_name"]: r["id"] for r in conn.execute("SELECT id, file_name FROM image")}
    with transaction(conn):
        cat = ensure_category(conn, "cat", supercategory="animal")
        dog = ensure_category(conn, "dog")
        for i, (name, category) in enumerate([("a.jpg", cat), ("a.jpg", dog), ("b.png", cat)]):
            row = conn.execute("SELECT height, width FROM image WHERE id=?", (ids[name],)).fetchone()
            mask = square_mask(row["height"], row["width"], 2 + i, 3, 12 + i, 20)
            insert_annotation(conn, ids[name], category, masks.encode(mask), clicks=i + 1, seconds=0.1 * (i + 1))
        insert_annotation(conn, ids["b.png"], dog, masks.encode(square_mask(40, 30, 0, 0, 5, 5)), status="proposed")
        conn.execute("DELETE FROM annotation WHERE id = 2")  # a gap in the ids must survive the copy
        set_rating(conn, 1, 7, "", None, "2026-12-04T10:00:00Z")  # 1..10 ratings travel with their masks
        set_rating(conn, 3, 2, "rev", None, "2026-12-04T10:01:00Z")
    before = export_coco(conn, statuses=("accepted", "proposed", "rejected"))
    del before["info"]  # the export's date
    store.close()

    pg_url = pg_cluster.create_database("copy_test")
    assert main(["db", "migrate", "--db", pg_url]) == 0
    assert f"is at schema version {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["db", "copy", "--from", sqlite_url, "--to", pg_url]) == 0
    assert "copied 0 accounts, 8 images, 2 categories and 3 annotations (2 ratings)" in capsys.readouterr().err
    pg = open_database(pg_url)
    after = export_coco(pg, statuses=("accepted", "proposed", "rejected"))
    del after["info"]
    assert after == before and len(after["annotations"]) == 3
    assert sum(len(a.get("ratings", [])) for a in after["annotations"]) == 2
    with transaction(pg):  # new rows continue after the copied ids
        assert insert_annotation(pg, ids["a.jpg"], cat, masks.encode(square_mask(48, 64, 0, 0, 3, 3))) == 5
        assert ensure_category(pg, "bird") == 3
    pg.close()
    assert main(["db", "copy", "--from", sqlite_url, "--to", pg_url]) == 2
    assert "already holds data" in capsys.readouterr().err
    assert main(["db", "copy", "--from", sqlite_url, "--to", "mysql://x"]) == 2
    assert "unknown database URL" in capsys.readouterr().err
