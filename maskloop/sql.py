"""What the data engine asks of an annotation store's connection, whichever database holds it."""

from __future__ import annotations

from typing import Any, Protocol


class Connection(Protocol):
    """``sqlite3.Connection``, or ``server.db.PgConnection`` (PostgreSQL with sqlite3's calling
    convention): ``?`` placeholders; rows indexed by position or by column name."""

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...
