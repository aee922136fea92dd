"""The request's database connection: opened on first use, closed when the request ends."""

from __future__ import annotations

from flask import Flask, current_app, g

from maskloop.server.store.db import Connection, connect, open_database


def get_db() -> Connection:
    """The request's connection (opened on first use, closed at the end of the request)."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    conn: Connection = g.db
    return conn


def close_db(_exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask) -> None:
    """Create or upgrade the schema now and close request connections on teardown."""
    open_database(app.config["DATABASE"]).close()
    app.teardown_appcontext(close_db)
