"""The request's database connection: borrowed on first use, given back when the request ends.

PostgreSQL connections come from the app's pool (``server/store/pool.py``, ``PG_POOL_SIZE``
connections at most, default ``THREADS``); a SQLite connection is opened per request. With
``GROUP_COMMIT`` (the default) a SQLite request commits without its own fsync, and a request that
changed anything waits, before its answer goes out, for one WAL fsync shared with the requests
that committed at the same time (``server/store/group_commit.py``).
"""

from __future__ import annotations

import weakref

from flask import Flask, Response, current_app, g

from maskloop.server.store.db import Connection, SqliteConnection, connect, is_postgres, open_database, sqlite_path
from maskloop.server.store.group_commit import GroupCommit

POOL_KEY = "maskloop_store_pool"
GROUP_COMMIT_KEY = "maskloop_group_commit"


def get_db() -> Connection:
    """The request's connection (borrowed on first use, given back at the end of the request)."""
    if "db" not in g:
        pool = current_app.extensions.get(POOL_KEY)
        if pool is not None:
            g.db = pool.connection()
        elif GROUP_COMMIT_KEY in current_app.extensions:
            g.db = connect(current_app.config["DATABASE"], synchronous="NORMAL")
        else:
            g.db = connect(current_app.config["DATABASE"])
    conn: Connection = g.db
    return conn


def sync_writes(response: Response) -> Response:
    """Before a request that wrote is answered: its commits on disk (the group's shared fsync)."""
    conn = g.get("db")
    group: GroupCommit | None = current_app.extensions.get(GROUP_COMMIT_KEY)
    if group is not None and isinstance(conn, SqliteConnection) and conn.total_changes > 0:
        group.sync()
    return response


def close_db(_exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask) -> None:
    """Create or upgrade the schema now, open the PostgreSQL pool, give connections back on teardown."""
    target = app.config["DATABASE"]
    open_database(target).close()
    if is_postgres(target):
        from maskloop.server.store.pool import StorePool

        pool = StorePool(str(target), app.config.get("PG_POOL_SIZE") or app.config["THREADS"])
        app.extensions[POOL_KEY] = pool
        weakref.finalize(app, pool.close)
    elif app.config.get("GROUP_COMMIT", True):
        group = GroupCommit(sqlite_path(target))
        app.extensions[GROUP_COMMIT_KEY] = group
        weakref.finalize(app, group.close)
        app.after_request(sync_writes)
    app.teardown_appcontext(close_db)
