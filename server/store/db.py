"""The annotation store: SQLite (embedded default) or PostgreSQL, one schema, one set of migrations.

A store is named by a *target*: a file path or ``sqlite:///path`` (SQLite), or a
``postgresql://user@host:port/dbname`` URL (PostgreSQL through psycopg 3). Both are used through
the same small interface: ``conn.execute(sql, params)`` with ``?`` placeholders, rows indexable
by position and by column name, ``transaction(conn)`` for writes, ``INSERT ... RETURNING id``.

Durability: SQLite runs in WAL mode with ``synchronous=FULL`` and PostgreSQL commits with its
default ``synchronous_commit=on``; either way a transaction that returned from ``COMMIT`` is on
disk, so every 2xx answer that wrote something survives a SIGKILL or a power cut. The server's
SQLite requests commit with ``synchronous=NORMAL`` and share one WAL fsync before they answer
(``group_commit.py``): the same guarantee for every answer.

Schema: ``schema.sql`` (version ``BASE_VERSION``) and the ``MIGRATIONS`` after it are written in SQLite's dialect with types PostgreSQL also knows;
``pg_dialect`` maps the few differences (identity ids, 64-bit integers, double precision, byte
order text collation so that ``ORDER BY file_name`` agrees). The schema version lives in
``PRAGMA user_version`` (SQLite) or the one-row table ``maskloop_schema`` (PostgreSQL).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import psycopg

from maskloop.errors import DISK_FULL_MESSAGE, DiskFull, UserError

#: The version ``schema.sql`` creates; a new store then runs the migrations from there on.
BASE_VERSION = 2
#: version -> SQL (SQLite dialect, mapped by ``pg_dialect``) that upgrades a store from that version to
#: the next: inline, or the name of a file in ``migrations/``.
MIGRATIONS: dict[int, str] = {
    1: "ALTER TABLE annotation ADD COLUMN model_version TEXT;",  # provenance: which fine-tuned decoder made the mask
    2: "003_accounts.sql",
    3: "004_work_review.sql",
    4: "005_mask_history.sql",
    5: "006_category_order.sql",
    6: "007_ratings.sql",
    7: "008_token_expiry.sql",
}
#: The version this maskloop writes.
SCHEMA_VERSION = max(MIGRATIONS) + 1
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
#: What a constraint violation raises on either backend (``except IntegrityError``).
IntegrityError = (sqlite3.IntegrityError, psycopg.IntegrityError)
#: What any database failure raises on either backend.
DatabaseError = (sqlite3.DatabaseError, psycopg.Error)
#: Key of the advisory lock that serialises migrations of one PostgreSQL database.
_MIGRATION_LOCK = 0x6D61736B


class SqliteConnection(sqlite3.Connection):
    """A ``sqlite3.Connection`` that says which dialect it speaks."""

    dialect = "sqlite"


class PgRow(tuple[Any, ...]):
    """A PostgreSQL row that, like ``sqlite3.Row``, is indexed by position or by column name."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> PgRow:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _pg_rows(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], PgRow]:
    description = cursor.description or []
    index = {column.name: i for i, column in enumerate(description)}
    return lambda values: PgRow(values, index)


class PgConnection:
    """A psycopg 3 connection (autocommit; ``transaction`` to write) with sqlite3's calling convention.

    ``execute`` takes ``?`` placeholders, as the rest of maskloop writes them.
    """

    dialect = "postgresql"

    def __init__(
        self, raw: psycopg.Connection[PgRow], release: Callable[[psycopg.Connection[PgRow]], None] | None = None
    ) -> None:
        self.raw = raw
        self._release = release  # a pool's putconn: close() gives the connection back

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """A ``psycopg.Cursor`` whose rows are ``PgRow``; ``Any``, as sqlite3 types its rows."""
        if params is not None:
            sql = _placeholders(sql)
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(_placeholders(sql), rows)

    def close(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release(self.raw)
        else:
            self.raw.close()


def _placeholders(sql: str) -> str:
    """sqlite3's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


#: A connection to either backend.
Connection = SqliteConnection | PgConnection
#: A row of either backend, indexed by position or column name.
Row = sqlite3.Row | PgRow


def is_postgres(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return str(target).startswith(("postgresql://", "postgres://"))


def sqlite_path(target: str | Path) -> Path:
    """The file of a SQLite target (a path or ``sqlite:///path``)."""
    text = str(target)
    if text.startswith("sqlite://"):
        rest = text[len("sqlite://") :]
        if not rest.startswith("/"):
            raise UserError(f"bad SQLite URL {text!r}: write sqlite:///relative/path or sqlite:////absolute/path")
        return Path(rest[1:] or ".")
    if "://" in text:
        raise UserError(f"unknown database URL {shown(text)!r}: use sqlite:///PATH or postgresql://USER@HOST/DB")
    return Path(text)


def shown(target: str | Path) -> str:
    """The target as it may be printed: a URL's password replaced by ``***``."""
    text = str(target)
    if not is_postgres(text):
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def configure_pg(raw: psycopg.Connection[Any]) -> None:
    """maskloop's settings of a new PostgreSQL connection (also run by the server's pool)."""
    from psycopg.types.numeric import FloatLoader

    raw.adapters.register_loader("numeric", FloatLoader)  # sum()/avg() as float, like SQLite


def pg_rows(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], PgRow]:
    """psycopg's row factory for ``PgRow`` (rows indexed by position or column name)."""
    return _pg_rows(cursor)


def connect(target: str | Path, synchronous: Literal["FULL", "NORMAL"] = "FULL") -> Connection:
    """Open the store with maskloop's settings (autocommit; use ``transaction`` to write).

    Rows come back indexable by column name (``sqlite3.Row`` / ``PgRow``). ``synchronous``
    (SQLite): ``NORMAL`` only for a caller that makes its commits durable itself before it
    reports them (the server's group commit, ``group_commit.py``).
    """
    if is_postgres(target):
        raw = psycopg.connect(str(target), autocommit=True, row_factory=_pg_rows)
        configure_pg(raw)
        return PgConnection(raw)
    conn = sqlite3.connect(
        str(sqlite_path(target)),
        timeout=30,
        isolation_level=None,
        check_same_thread=False,
        factory=SqliteConnection,
    )
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")  # creates the -wal and -shm files: the first write
        conn.execute(f"PRAGMA synchronous = {'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
        conn.execute("PRAGMA busy_timeout = 30000")
    except sqlite3.OperationalError as exc:
        conn.close()
        if _no_room_beside(sqlite_path(target)):  # SQLite says "disk I/O error" when -shm cannot grow
            raise DiskFull(f"cannot open the store: the {DISK_FULL_MESSAGE}") from exc
        raise
    return conn


def _no_room_beside(path: Path, minimum: int = 1 << 20) -> bool:
    """Whether the filesystem holding ``path`` has less than ``minimum`` bytes free."""
    try:
        st = os.statvfs(path.parent if str(path.parent) else ".")
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < minimum


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """One write transaction: everything inside commits together or not at all."""
    if isinstance(conn, PgConnection):
        with conn.raw.transaction():
            yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def pg_dialect(sql: str) -> str:
    """``schema.sql``/migration SQL for PostgreSQL: identity ids, BIGINT, DOUBLE PRECISION, C collation."""
    sql = sql.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
    return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', sql)


def schema_version(conn: Connection) -> int:
    """The store's schema version (0: empty)."""
    if isinstance(conn, PgConnection):
        exists = conn.execute("SELECT to_regclass('maskloop_schema')").fetchone()[0]
        if exists is None:
            return 0
        return int(conn.execute("SELECT version FROM maskloop_schema").fetchone()[0])
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: Connection) -> None:
    """Create the schema in an empty store, or upgrade an older one to ``SCHEMA_VERSION``."""
    if isinstance(conn, PgConnection):
        _migrate_pg(conn)
        return
    version = schema_version(conn)
    _refuse_newer(version)
    if version == 0:
        conn.executescript(f"BEGIN IMMEDIATE;\n{_schema()}\nPRAGMA user_version = {BASE_VERSION};\nCOMMIT;")
        version = BASE_VERSION
    while version < SCHEMA_VERSION:
        conn.executescript(f"BEGIN IMMEDIATE;\n{_migration(version)}\nPRAGMA user_version = {version + 1};\nCOMMIT;")
        version += 1


def _migrate_pg(conn: PgConnection) -> None:
    """PostgreSQL: each step in one transaction, under an advisory lock (servers may start together)."""
    while True:
        with transaction(conn):
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            version = schema_version(conn)
            _refuse_newer(version)
            if version == SCHEMA_VERSION:
                return
            if version == 0:
                conn.execute(pg_dialect(_schema()))
                conn.execute("CREATE TABLE maskloop_schema (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO maskloop_schema (version) VALUES (?)", (BASE_VERSION,))
            else:
                conn.execute(pg_dialect(_migration(version)))
                conn.execute("UPDATE maskloop_schema SET version = ?", (version + 1,))


def _refuse_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise UserError(
            f"the database was written by a newer maskloop (schema {version}, this one knows {SCHEMA_VERSION}): upgrade maskloop"
        )


def _schema() -> str:
    return resources.files("maskloop.server.store").joinpath("schema.sql").read_text(encoding="utf-8")


def _migration(version: int) -> str:
    """The SQL that upgrades a store at ``version`` to the next one."""
    sql = MIGRATIONS[version]
    if sql.endswith(".sql"):
        return resources.files("maskloop.server.store").joinpath("migrations", sql).read_text(encoding="utf-8")
    return sql


def open_database(target: str | Path) -> Connection:
    """Connect to the store ``target`` names, creating its folder (SQLite) and schema if needed."""
    try:
        if not is_postgres(target):
            sqlite_path(target).parent.mkdir(parents=True, exist_ok=True)
        conn = connect(target)
        migrate(conn)
    except DatabaseError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot open the database {shown(target)}: {message}") from None
    except OSError as exc:
        raise UserError(f"cannot create the work folder {sqlite_path(target).parent}: {exc.strerror or exc}") from None
    return conn


def data_version(conn: Connection) -> int:
    """A number that changes whenever anyone commits a change to the store (export cache key).

    SQLite: ``PRAGMA data_version`` (changes when another connection commits). PostgreSQL: the
    current WAL position, which moves with every commit (and with some other writes: a spare
    re-export, never a stale one).
    """
    if isinstance(conn, PgConnection):
        return int(conn.execute("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint").fetchone()[0])
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds (what ``created``/``updated`` hold)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
