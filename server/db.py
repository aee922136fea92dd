"""The SQLite annotation store: connection per request, schema from ``schema.sql``, migrations.

The database runs in WAL mode with ``synchronous=FULL``: a transaction that returned from
``COMMIT`` is on disk, so every 2xx answer that wrote something survives a SIGKILL or a
power cut. The schema version lives in ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from flask import Flask, current_app, g

from maskloop.errors import UserError

#: The version ``schema.sql`` creates; bump it together with a ``MIGRATIONS`` entry.
SCHEMA_VERSION = 2
#: version -> SQL that upgrades a database from that version to the next.
MIGRATIONS: dict[int, str] = {
    1: "ALTER TABLE annotation ADD COLUMN model_version TEXT;",  # provenance: which fine-tuned decoder made the mask
}
#: Colours given to new categories in turn (Tableau 10).
CATEGORY_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def connect(path: str | Path) -> sqlite3.Connection:
    """Open the database with maskloop's settings (autocommit; use ``transaction`` to write).

    Rows come back as ``sqlite3.Row`` (index by column name).
    """
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: everything inside commits together or not at all."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection) -> None:
    """Create the schema in an empty database, or upgrade an older one to ``SCHEMA_VERSION``."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise UserError(
            f"the database was written by a newer maskloop (schema {version}, this one knows {SCHEMA_VERSION}): upgrade maskloop"
        )
    if version == 0:
        schema = resources.files("maskloop.server").joinpath("schema.sql").read_text(encoding="utf-8")
        conn.executescript(f"BEGIN IMMEDIATE;\n{schema}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;")
        return
    while version < SCHEMA_VERSION:
        conn.executescript(f"BEGIN IMMEDIATE;\n{MIGRATIONS[version]}\nPRAGMA user_version = {version + 1};\nCOMMIT;")
        version += 1


def open_database(path: str | Path) -> sqlite3.Connection:
    """Connect to the database at ``path``, creating its folder and schema if needed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path)
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cannot open the database {path}: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot create the work folder {path.parent}: {exc.strerror or exc}") from None
    return conn


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds (what ``created``/``updated`` hold)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def get_db() -> sqlite3.Connection:
    """The request's connection (opened on first use, closed at the end of the request)."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask) -> None:
    """Create or upgrade the schema now and close request connections on teardown."""
    open_database(app.config["DATABASE"]).close()
    app.teardown_appcontext(close_db)
