"""The request's database connection: borrowed on first use, given back when the request ends.

PostgreSQL connections come from the app's pool (``server/store/pool.py``, ``PG_POOL_SIZE``
connections at most, default ``THREADS``); a SQLite connection is opened per request.
"""

from __future__ import annotations

import weakref

from flask import Flask, current_app, g

from maskloop.server.store.db import Connection, connect, is_postgres, open_database

POOL_KEY = "maskloop_store_pool"


def get_db() -> Connection:
    """The request's connection (borrowed on first use, given back at the end of the request)."""
    if "db" not in g:
        pool = current_app.extensions.get(POOL_KEY)
        g.db = pool.connection() if pool is not None else connect(current_app.config["DATABASE"])
    conn: Connection = g.db
    return conn


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
    app.teardown_appcontext(close_db)
