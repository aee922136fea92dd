"""Categories: the palette colour of a new one, and find-or-create by name."""

from __future__ import annotations

from maskloop.server.store.db import CATEGORY_PALETTE, Connection, now


def next_color(conn: Connection) -> str:
    """The palette colour for the next new category."""
    return CATEGORY_PALETTE[conn.execute("SELECT count(*) FROM category").fetchone()[0] % len(CATEGORY_PALETTE)]


def ensure_category(conn: Connection, name: str, color: str | None = None, supercategory: str | None = None) -> int:
    """The id of the category called ``name``, created (with the next palette colour) if new."""
    row = conn.execute("SELECT id FROM category WHERE name=?", (name,)).fetchone()
    if row is not None:
        return int(row["id"])
    if color is None:
        color = next_color(conn)
    stamp = now()
    cur = conn.execute(
        "INSERT INTO category (name, color, supercategory, created, updated) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (name, color, supercategory, stamp, stamp),
    )
    return int(cur.fetchall()[0][0])  # fetch all: SQLite keeps the statement open until then
