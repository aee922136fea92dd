"""The server's PostgreSQL connections: one ``psycopg_pool.ConnectionPool`` per server process.

A request borrows a connection for its duration and gives it back at the end (``close``), instead
of opening one per request. Each checkout is health-checked (``check_quietly``: a connection
broken by a PostgreSQL restart is thrown away and replaced), so after an outage the server
recovers by itself as soon as the database answers again. While it does not, borrowing waits at
most ``CHECKOUT_TIMEOUT`` seconds, then tries one direct connection (the pool may still be waiting
out its reconnection delay), and raises ``psycopg_pool.PoolTimeout`` if that fails too; the HTTP layer answers
that, and any ``psycopg.OperationalError`` (a connection lost mid-request: nothing was committed),
with 503 and ``Retry-After`` (``server/http/json_api.py``).

SQLite needs no pool: a connection is a file handle, opened per request.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from maskloop.server.store.db import PgConnection, PgRow, configure_pg, pg_rows

#: How long a request waits for a connection (the database is down, or every one is in use).
CHECKOUT_TIMEOUT = 2.0
#: How long the pool keeps trying to reconnect in the background before it reports a failure
#: (it then keeps trying on the next checkout).
RECONNECT_TIMEOUT = 60.0


def check_quietly(raw: psycopg.Connection[Any]) -> None:
    """The pool's health check on checkout, without a round trip when the connection is quiet.

    A connection resting in the pool has nothing to read unless the server spoke meanwhile: it
    closed the connection (a PostgreSQL restart or a killed backend), or sent a notice. Only then
    is the connection asked (``ConnectionPool.check_connection``, an empty query), so a request
    pays no extra round trip (1 of ~10 per annotation POST) and a broken connection is still
    thrown away before a request gets it.

    Raises:
      psycopg.OperationalError: the connection is closed or broken (the pool discards it).
    """
    if raw.closed or raw.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([raw.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(raw)


class StorePool:
    """Pooled connections to the PostgreSQL store at ``url``: at most ``size`` open at once."""

    def __init__(self, url: str, size: int) -> None:
        self.size = max(1, int(size))
        self.url = url
        self.pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=1,
            max_size=self.size,
            kwargs={"autocommit": True, "row_factory": pg_rows},
            configure=configure_pg,
            check=check_quietly,
            timeout=CHECKOUT_TIMEOUT,
            reconnect_timeout=RECONNECT_TIMEOUT,
            name="maskloop",
            open=False,
        )
        self.pool.open(wait=False)  # a database down at start is an outage, not a crash

    def connection(self) -> PgConnection:
        """A connection for one request; its ``close()`` gives it back to the pool.

        When the pool has none to give (after an outage it retries with a growing delay, up to
        several seconds), one direct connection is tried before giving up: the database may be
        back already, and the request is then served without waiting for the pool to notice.
        """
        try:
            raw = self.pool.getconn()
        except PoolTimeout:
            try:
                direct = psycopg.connect(self.url, autocommit=True, row_factory=pg_rows, connect_timeout=2)
            except psycopg.OperationalError:
                raise PoolTimeout(f"no database connection within {CHECKOUT_TIMEOUT:g} s") from None
            configure_pg(direct)
            return PgConnection(direct)  # closed at the end of the request
        return PgConnection(raw, release=self._give_back)

    def _give_back(self, raw: Any) -> None:
        self.pool.putconn(raw)  # the pool rolls back an open transaction and drops a broken connection

    def stats(self) -> dict[str, int]:
        """``psycopg_pool``'s counters (``connections_num``, ``requests_num``, ...)."""
        return dict(self.pool.get_stats())

    def close(self) -> None:
        self.pool.close()


__all__ = ["StorePool", "PgRow"]
