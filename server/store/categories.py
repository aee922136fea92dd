"""Categories: listing them with their mask counts, find-or-create by name, create, edit, delete.

``ensure_category`` runs in the caller's transaction; ``add_category``, ``update_category`` and
``delete_category`` commit on their own (a name already taken or a category in use is their answer,
not an exception)."""

from __future__ import annotations

from typing import Any

from maskloop.server.store.db import CATEGORY_PALETTE, Connection, IntegrityError, Row, now, transaction

#: Categories with ``num_annotations``, the count of their accepted masks.
_WITH_COUNTS = """SELECT c.*, (SELECT count(*) FROM annotation a WHERE a.category_id = c.id AND a.status = 'accepted')
                  AS num_annotations FROM category c"""


def next_color(conn: Connection) -> str:
    """The palette colour for the next new category."""
    return CATEGORY_PALETTE[conn.execute("SELECT count(*) FROM category").fetchone()[0] % len(CATEGORY_PALETTE)]


#: A category's place in the list: its ``position`` once the categories were reordered, else its id.
_ORDER = "coalesce(c.position, c.id), c.id"


def _insert(conn: Connection, name: str, color: str, supercategory: str | None) -> int:
    stamp = now()
    last = conn.execute("SELECT max(position) FROM category").fetchone()[0]
    cur = conn.execute(
        "INSERT INTO category (name, color, supercategory, created, updated, position) VALUES (?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (name, color, supercategory, stamp, stamp, None if last is None else int(last) + 1),
    )
    return int(cur.fetchall()[0][0])  # fetch all: SQLite keeps the statement open until then


def ensure_category(conn: Connection, name: str, color: str | None = None, supercategory: str | None = None) -> int:
    """The id of the category called ``name``, created (with the next palette colour) if new."""
    row = conn.execute("SELECT id FROM category WHERE name=?", (name,)).fetchone()
    if row is not None:
        return int(row["id"])
    return _insert(conn, name, next_color(conn) if color is None else color, supercategory)


def list_categories(conn: Connection) -> list[Row]:
    """Every category with its count of accepted masks (``num_annotations``), in the chosen order
    (by id until someone reorders them)."""
    return conn.execute(_WITH_COUNTS + f" ORDER BY {_ORDER}").fetchall()


def reorder_categories(conn: Connection, ids: list[int]) -> bool:
    """Number the categories in the order of ``ids``; False (nothing changed) unless ``ids`` names
    every category exactly once."""
    with transaction(conn):
        known = sorted(int(r[0]) for r in conn.execute("SELECT id FROM category"))
        if sorted(ids) != known:
            return False
        stamp = now()
        for position, category_id in enumerate(ids):
            conn.execute("UPDATE category SET position=?, updated=? WHERE id=?", (position, stamp, category_id))
    return True


def move_annotations(conn: Connection, from_id: int, to_id: int) -> list[int]:
    """Inside the caller's transaction: give every mask of category ``from_id`` category ``to_id``;
    the ids of the masks moved."""
    moved = [int(r[0]) for r in conn.execute("SELECT id FROM annotation WHERE category_id=? ORDER BY id", (from_id,))]
    conn.execute("UPDATE annotation SET category_id=?, updated=? WHERE category_id=?", (to_id, now(), from_id))
    return moved


def get_category(conn: Connection, category_id: int) -> Row | None:
    """The category with its count of accepted masks (``num_annotations``), or None when there is none."""
    row: Row | None = conn.execute(_WITH_COUNTS + " WHERE c.id = ?", (category_id,)).fetchone()
    return row


def category_exists(conn: Connection, category_id: int) -> bool:
    """Whether a category with this id exists."""
    return conn.execute("SELECT 1 FROM category WHERE id=?", (category_id,)).fetchone() is not None


def add_category(conn: Connection, name: str, color: str | None = None, supercategory: str | None = None) -> int | None:
    """The id of a new category (the next palette colour unless ``color``), or None when ``name`` is taken."""
    try:
        with transaction(conn):
            return _insert(conn, name, color or next_color(conn), supercategory)
    except IntegrityError:
        return None


def update_category(conn: Connection, category_id: int, fields: dict[str, Any]) -> bool:
    """Whether the category's ``fields`` (name, color, supercategory) were set: not when the name is taken."""
    sets = ", ".join(f"{k}=?" for k in fields)
    try:
        with transaction(conn):
            conn.execute(f"UPDATE category SET {sets}, updated=? WHERE id=?", (*fields.values(), now(), category_id))
    except IntegrityError:
        return False
    return True


def delete_category(conn: Connection, category_id: int) -> int:
    """How many masks use the category: 0 when it was deleted, else it is kept."""
    used = 0
    try:
        with transaction(conn):  # the check and the delete in one transaction: no annotation slips in between
            used = conn.execute("SELECT count(*) FROM annotation WHERE category_id=?", (category_id,)).fetchone()[0]
            if not used:
                conn.execute("DELETE FROM category WHERE id=?", (category_id,))
    except IntegrityError:  # the foreign key still guards it
        used = 1
    return int(used)
