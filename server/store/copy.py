"""Copying a whole store into an empty one (``maskloop db copy``), ids kept, in one transaction."""

from __future__ import annotations

from maskloop.errors import UserError
from maskloop.server.store.db import Connection, PgConnection, open_database, shown, transaction

#: The store's tables in foreign-key order (a table only refers to those before it).
#: (Login sessions and failed logins are not copied: they are short-lived.)
TABLES = ("account", "image", "category", "annotation", "review_log", "annotation_history", "rating")


def copy_store(source: str, target: str, replace: bool = False) -> dict[str, int]:
    """Copy every row of ``TABLES`` from store ``source`` into the empty store ``target``, ids kept.
    ``replace``: empty ``target`` first, in the same transaction (all or nothing).

    Returns:
      rows copied per table.
    Raises:
      UserError: the target already holds data, or either store cannot be opened.
    """
    src = open_database(source)
    dst = open_database(target)
    try:
        for table in TABLES if not replace else ():
            if dst.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
                raise UserError(f"{shown(target)} already holds data (table {table}): copy into an empty store")
        counts: dict[str, int] = {}
        with transaction(dst):
            if replace:
                _empty(dst)
            for table in TABLES:
                cursor = src.execute(f"SELECT * FROM {table} ORDER BY id")
                columns = [d[0] for d in cursor.description]
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                counts[table] = 0
                while rows := cursor.fetchmany(1000):
                    dst.executemany(sql, [tuple(r) for r in rows])
                    counts[table] += len(rows)
                if isinstance(dst, PgConnection):  # identity columns do not follow explicit ids
                    dst.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false)"
                        f" FROM {table}"
                    )
    finally:
        src.close()
        dst.close()
    return counts


def _empty(conn: Connection) -> None:
    """Delete every row of the store's tables but its schema version, inside the caller's transaction."""
    if isinstance(conn, PgConnection):
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'maskloop_schema'"
        tables = [r[0] for r in conn.execute(sql)]
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        return
    conn.execute("PRAGMA defer_foreign_keys = ON")
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
        conn.execute(f"DELETE FROM {table}")
