"""Backups of a whole store (``maskloop db backup`` / ``maskloop db restore``), safe while servers run.

A backup is one file that says what it holds by its first bytes:

- **SQLite** (``SQLite format 3``): SQLite's online backup API copies a consistent snapshot of the
  store (the copy restarts by itself if a writer changed pages it had copied), so a server may
  keep writing meanwhile; every write acknowledged before the backup started is in it.
- **PostgreSQL** (``PGDMP``): ``pg_dump --format=custom``, one read-only transaction (a snapshot
  that never blocks writers). Only the store's schema is dumped when its URL sets a search path.

Either is written to a temporary file beside ``FILE``, fsynced and renamed: a backup that failed
half way (a full disk, a lost connection) leaves no file that looks complete.

Restore brings a backup back into a store:

- a SQLite backup into a SQLite store: the backup API again, from the file into the store (the
  store is locked for the copy; other connections see all of it or none); into a PostgreSQL
  store: ``db copy``'s row copy, one transaction;
- a PostgreSQL dump into a PostgreSQL store: ``pg_restore --clean --if-exists --single-transaction``
  (all or nothing); into SQLite it is refused (restore it into PostgreSQL, then ``db copy``).

A store that already holds images or annotations is only overwritten with ``replace=True``; an
older backup is upgraded by the store's migrations when it is next opened.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from maskloop.errors import UserError
from maskloop.server.store.copy import TABLES, copy_store
from maskloop.server.store.db import is_postgres, open_database, shown, sqlite_path

Kind = Literal["sqlite", "postgresql"]
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
#: Pages the SQLite backup copies per step (a writer may run between steps).
_PAGES_PER_STEP = 1024


def store_kind(target: str) -> Kind:
    """Which backend a store target names (see ``maskloop.server.store.db``)."""
    return "postgresql" if is_postgres(target) else "sqlite"


def backup_kind(path: Path) -> Kind:
    """What a backup file holds, by its first bytes; UserError when it is neither."""
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        raise UserError(f"no backup file {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise UserError(f"{path} is not a maskloop backup (neither a SQLite file nor a pg_dump custom-format file)")


def pg_tool(name: str) -> str:
    """The newest ``pg_dump``/``pg_restore`` on this machine (Debian keeps them per major version)."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    tool = found[-1] if found else shutil.which(name)
    if not tool:
        raise UserError(f"{name} is not installed: install PostgreSQL's client programs (Debian: postgresql-client)")
    return tool


def _pg_schema(url: str) -> str | None:
    """The schema a URL's ``options=-csearch_path=...`` names, if any."""
    for option in parse_qs(urlsplit(url).query).get("options", []):
        for part in unquote(option).split():
            for prefix in ("-csearch_path=", "--search_path="):
                if part.startswith(prefix):
                    return part[len(prefix) :].split(",")[0]
    return None


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise UserError(f"{what} failed: {lines[-1] if lines else f'exit status {done.returncode}'}")


def _fsync_rename(tmp: Path, final: Path) -> None:
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    tmp.replace(final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_store(target: str, to: Path) -> Kind:
    """Write a consistent backup of store ``target`` to file ``to`` (replaced if it exists)."""
    to = Path(to)
    if to.is_dir():
        raise UserError(f"{to} is a folder: name the backup file")
    if not to.parent.is_dir():
        raise UserError(f"no folder {to.parent} to write the backup in")
    kind = store_kind(target)
    open_database(target).close()  # a clear error for a missing or unreadable store, and its schema up to date
    fd, name = tempfile.mkstemp(prefix=f".{to.name}.", suffix=".partial", dir=to.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        if kind == "sqlite":
            source = sqlite3.connect(sqlite_path(target))
            dest = sqlite3.connect(tmp)
            try:
                source.backup(dest, pages=_PAGES_PER_STEP)
            finally:
                dest.close()
                source.close()
        else:
            cmd = [pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={tmp}", f"--dbname={target}"]
            if schema := _pg_schema(target):
                cmd.insert(-1, f"--schema={schema}")
            _run(cmd, "pg_dump")
        _fsync_rename(tmp, to)
    except OSError as exc:
        raise UserError(f"cannot write the backup {to}: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise UserError(f"cannot back up {shown(target)}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return kind


def _holds_data(target: str) -> bool:
    conn = open_database(target)
    try:
        return any(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES)
    finally:
        conn.close()


def restore_store(source: Path, target: str, replace: bool = False) -> Kind:
    """Bring backup file ``source`` back into store ``target`` (see the module doc)."""
    source = Path(source)
    kind = backup_kind(source)
    into = store_kind(target)
    if kind == "postgresql" and into == "sqlite":
        raise UserError(
            f"{source} is a PostgreSQL dump: restore it into a PostgreSQL store, then `maskloop db copy` it to SQLite"
        )
    if into == "sqlite":
        path = sqlite_path(target)
        if not path.parent.is_dir():
            raise UserError(f"no folder {path.parent} for the store {path}")
    if (into == "postgresql" or sqlite_path(target).exists()) and _holds_data(target) and not replace:
        raise UserError(f"{shown(target)} already holds data: restore with --replace to overwrite it")
    if kind == "sqlite" and into == "sqlite":
        backup = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dest = sqlite3.connect(sqlite_path(target), timeout=30)
        try:
            backup.backup(dest)
        except sqlite3.Error as exc:
            raise UserError(f"cannot restore {source} into {shown(target)}: {exc}") from None
        finally:
            dest.close()
            backup.close()
        open_database(target).close()  # migrations, if the backup is older
    elif kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="maskloop-restore-") as tmp:
            copy = Path(tmp) / "backup.db"  # opening a store may migrate it: never the backup itself
            shutil.copyfile(source, copy)
            copy_store(f"sqlite:///{copy}", target, replace=True)
    else:
        cmd = [pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction"]
        _run([*cmd, f"--dbname={target}", str(source)], "pg_restore")
        open_database(target).close()
    return kind
