"""``maskloop db backup`` / ``db restore``: SQLite and PostgreSQL, the COCO export the same after a
round trip, a backup taken while a writer runs, and clear one-line refusals."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from support.data import make_data_dir, square_mask

from maskloop import masks
from maskloop.cli import main
from maskloop.server.jobs.coco import export_coco
from maskloop.server.jobs.project import open_store
from maskloop.server.store.annotations import insert_annotation
from maskloop.server.store.categories import ensure_category
from maskloop.server.store.db import Connection, open_database, transaction

STATUSES = ("accepted", "proposed", "rejected")


def _fill(conn: Connection) -> dict[str, int]:
    """Two categories and four annotations (one proposed, one id gap); image ids by file name."""
    ids = {r["file_name"]: r["id"] for r in conn.execute("SELECT id, file_name FROM image")}
    with transaction(conn):
        cat = ensure_category(conn, "cat", supercategory="animal")
        dog = ensure_category(conn, "dog")
        for i, (name, category) in enumerate([("a.jpg", cat), ("a.jpg", dog), ("b.png", cat)]):
            row = conn.execute("SELECT height, width FROM image WHERE id=?", (ids[name],)).fetchone()
            mask = square_mask(row["height"], row["width"], 2 + i, 3, 12 + i, 20)
            insert_annotation(conn, ids[name], category, masks.encode(mask), clicks=i + 1, seconds=0.1 * (i + 1))
        insert_annotation(conn, ids["b.png"], dog, masks.encode(square_mask(40, 30, 0, 0, 5, 5)), status="proposed")
        conn.execute("DELETE FROM annotation WHERE id = 2")
    return ids


def _coco(target: str) -> dict:
    conn = open_database(target)
    try:
        out = export_coco(conn, statuses=STATUSES)
    finally:
        conn.close()
    del out["info"]  # the export's date
    return out


def _damage(target: str) -> None:
    """What a backup is for: a lost annotation and a stray category."""
    conn = open_database(target)
    try:
        with transaction(conn):
            conn.execute("DELETE FROM annotation WHERE id = 1")
            ensure_category(conn, "stray")
    finally:
        conn.close()


def test_sqlite_backup_and_restore_keep_the_coco_export(tmp_path, capsys):
    data = make_data_dir(tmp_path / "data")
    store = open_store(data, None, progress=False)
    _fill(store.conn)
    store.close()
    db = str(data / ".maskloop" / "maskloop.db")
    before = _coco(db)
    backup = tmp_path / "backups" / "store.bak"
    backup.parent.mkdir()

    assert main(["db", "backup", "--data", str(data), "--to", str(backup)]) == 0
    assert "backed up" in capsys.readouterr().err
    assert backup.read_bytes().startswith(b"SQLite format 3\x00")
    assert [p.name for p in backup.parent.iterdir()] == ["store.bak"]  # no temporary file left

    _damage(db)
    assert _coco(db) != before
    assert main(["db", "restore", "--data", str(data), "--from", str(backup)]) == 2
    err = capsys.readouterr().err
    assert "already holds data: restore with --replace" in err and err.count("\n") == 1
    assert main(["db", "restore", "--data", str(data), "--from", str(backup), "--replace"]) == 0
    assert _coco(db) == before
    # into a new folder's store (no file yet): no --replace needed
    fresh = tmp_path / "fresh.db"
    assert main(["db", "restore", "--db", f"sqlite:///{fresh}", "--from", str(backup)]) == 0
    assert _coco(str(fresh)) == before


def test_a_backup_taken_while_a_writer_runs_is_consistent(tmp_path):
    """Every annotation committed before the backup started is in it, and the file is a sound database."""
    data = make_data_dir(tmp_path / "data")
    store = open_store(data, None, progress=False)
    ids = _fill(store.conn)
    store.close()
    db = str(data / ".maskloop" / "maskloop.db")
    stop = threading.Event()
    committed: list[int] = []

    def writer() -> None:
        conn = open_database(db)
        try:
            while not stop.is_set():
                with transaction(conn):
                    mask = masks.encode(square_mask(48, 64, 1, 1, 9, 9))
                    committed.append(insert_annotation(conn, ids["a.jpg"], 1, mask))
        finally:
            conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(committed) < 20:
            threading.Event().wait(0.01)
        acknowledged = list(committed)
        backup = tmp_path / "live.bak"
        assert main(["db", "backup", "--db", db, "--to", str(backup)]) == 0
    finally:
        stop.set()
        thread.join()
    check = sqlite3.connect(backup)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        saved = {r[0] for r in check.execute("SELECT id FROM annotation")}
    finally:
        check.close()
    assert set(acknowledged) <= saved


def test_postgres_backup_and_restore_keep_the_coco_export(tmp_path, pg_cluster, capsys):
    data = make_data_dir(tmp_path / "data")
    pg_url = pg_cluster.create_database("backup_test")
    store = open_store(data, tmp_path / "work", db=pg_url, progress=False)
    _fill(store.conn)
    store.close()
    before = _coco(pg_url)
    backup = tmp_path / "pg.dump"

    assert main(["db", "backup", "--db", pg_url, "--to", str(backup)]) == 0
    assert backup.read_bytes().startswith(b"PGDMP")
    _damage(pg_url)
    assert main(["db", "restore", "--db", pg_url, "--from", str(backup), "--replace"]) == 0
    assert _coco(pg_url) == before
    with transaction(conn := open_database(pg_url)):  # ids continue after the restored ones
        assert ensure_category(conn, "bird") == 3
    conn.close()

    # a SQLite backup restored into PostgreSQL, replacing what is there, all in one transaction
    sqlite_db = tmp_path / "lite.db"
    assert main(["db", "copy", "--from", pg_url, "--to", f"sqlite:///{sqlite_db}"]) == 0
    lite_backup = tmp_path / "lite.bak"
    assert main(["db", "backup", "--db", f"sqlite:///{sqlite_db}", "--to", str(lite_backup)]) == 0
    _damage(pg_url)
    assert main(["db", "restore", "--db", pg_url, "--from", str(lite_backup), "--replace"]) == 0
    after = _coco(pg_url)
    assert [c["name"] for c in after["categories"]] == ["cat", "dog", "bird"]
    assert after["annotations"] == before["annotations"]

    # a PostgreSQL dump cannot go into SQLite directly
    capsys.readouterr()
    assert main(["db", "restore", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--from", str(backup)]) == 2
    assert "is a PostgreSQL dump: restore it into a PostgreSQL store" in capsys.readouterr().err


def test_bad_backup_arguments_are_one_line(tmp_path, capsys):
    data = make_data_dir(tmp_path / "data")
    open_store(data, None, progress=False).close()
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello")
    cases = [
        (["db", "restore", "--data", str(data), "--from", str(not_a_backup)], "is not a maskloop backup"),
        (["db", "restore", "--data", str(data), "--from", str(tmp_path / "none.bak")], "no backup file"),
        (["db", "backup", "--data", str(data), "--to", str(tmp_path)], "is a folder: name the backup file"),
        (["db", "backup", "--data", str(data), "--to", str(tmp_path / "no" / "x.bak")], "no folder"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "notes.txt"]  # nothing half-written


def test_restore_refuses_to_touch_a_store_it_cannot_read(tmp_path, capsys):
    backup = tmp_path / "b.bak"
    data = make_data_dir(tmp_path / "data")
    open_store(data, None, progress=False).close()
    assert main(["db", "backup", "--data", str(data), "--to", str(backup)]) == 0
    target = tmp_path / "garbage.db"
    target.write_bytes(b"not a database at all" * 100)
    capsys.readouterr()
    assert main(["db", "restore", "--db", str(target), "--from", str(backup), "--replace"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert target.read_bytes() == b"not a database at all" * 100
    assert Path(backup).exists()
