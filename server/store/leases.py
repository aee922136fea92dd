"""Image leases ("next image" hands each person an image no one else holds), and an image's done mark.

A hold is a lease in the ``image`` row (``held_by``, ``lease_until``): taken by one conditional
``UPDATE ... WHERE id = (SELECT ... [FOR UPDATE SKIP LOCKED]) AND <still free>``, so two
people never hold one image, whichever server process they talk to: SQLite runs writers one at
a time (``BEGIN IMMEDIATE``), and on PostgreSQL concurrent takers skip each other's locked rows
and the repeated condition rejects a row that was taken meanwhile.
"""

from __future__ import annotations

import time

from maskloop.server.store.db import Connection, PgConnection, Row, now, transaction

#: What each queue hands out: images to annotate, and finished images not yet reviewed.
QUEUES = {
    "annotate": "done = 0",
    "review": "done = 1 AND review IS NULL",
}


def _usable(queue: str, not_done_by: int | None = None) -> str:
    """SQL condition: an image of ``queue`` that can be handed out (present and readable), and,
    with ``not_done_by`` (an account id), not finished by that account (nobody reviews their own)."""
    mine = f" AND (done_by IS NULL OR done_by <> {int(not_done_by)})" if not_done_by is not None else ""
    return f"missing = 0 AND error IS NULL AND {QUEUES[queue]}{mine}"


def take_next(
    conn: Connection, account_id: int, queue: str, seconds: float, not_done_by: int | None = None
) -> int | None:
    """Lease the next free image of ``queue`` to ``account_id`` (or renew the one it holds); its id or
    None. ``not_done_by``: skip images that account finished (see ``_usable``)."""
    t = time.time()
    usable = _usable(queue, not_done_by)
    lock = " FOR UPDATE SKIP LOCKED" if isinstance(conn, PgConnection) else ""
    for _attempt in range(5):
        with transaction(conn):
            row = conn.execute(
                f"UPDATE image SET lease_until = ? WHERE id = (SELECT id FROM image WHERE {usable}"
                f" AND held_by = ? AND lease_until > ? ORDER BY file_name LIMIT 1{lock}) RETURNING id",
                (t + seconds, account_id, t),
            ).fetchall()
            if row:
                return int(row[0][0])
            row = conn.execute(
                f"UPDATE image SET held_by = ?, lease_until = ? WHERE id = (SELECT id FROM image WHERE {usable}"
                f" AND (held_by IS NULL OR lease_until <= ?) ORDER BY file_name LIMIT 1{lock})"
                " AND (held_by IS NULL OR lease_until <= ?) RETURNING id",
                (account_id, t + seconds, t, t),
            ).fetchall()
        if row:
            return int(row[0][0])
        if (
            conn.execute(
                f"SELECT 1 FROM image WHERE {usable} AND (held_by IS NULL OR lease_until <= ?)", (t,)
            ).fetchone()
            is None
        ):
            return None  # nothing free; otherwise another taker won that row: try the next one
    return None


def take(
    conn: Connection, account_id: int, image_id: int, queue: str, seconds: float, not_done_by: int | None = None
) -> bool:
    """Lease ``image_id`` of ``queue`` to ``account_id`` if it is free, expired or already theirs
    (and, with ``not_done_by``, not finished by that account)."""
    t = time.time()
    with transaction(conn):
        rows = conn.execute(
            f"UPDATE image SET held_by = ?, lease_until = ? WHERE id = ? AND {_usable(queue, not_done_by)}"
            " AND (held_by IS NULL OR held_by = ? OR lease_until <= ?) RETURNING id",
            (account_id, t + seconds, image_id, account_id, t),
        ).fetchall()
    return bool(rows)


def renew(conn: Connection, account_id: int, image_id: int, seconds: float) -> bool:
    """Extend the caller's hold on ``image_id``; False if they do not hold it (any more)."""
    t = time.time()
    with transaction(conn):
        rows = conn.execute(
            "UPDATE image SET lease_until = ? WHERE id = ? AND held_by = ? AND lease_until > ? RETURNING id",
            (t + seconds, image_id, account_id, t),
        ).fetchall()
    return bool(rows)


def release(conn: Connection, account_id: int, image_id: int) -> bool:
    """Give back the caller's hold on ``image_id`` (an expired one too); False if they do not hold it."""
    with transaction(conn):
        rows = conn.execute(
            "UPDATE image SET held_by = NULL, lease_until = NULL WHERE id = ? AND held_by = ? RETURNING id",
            (image_id, account_id),
        ).fetchall()
    return bool(rows)


def first_free(conn: Connection, queue: str) -> int | None:
    """The id of the first usable image of ``queue`` by file name (single-user mode: nothing is leased)."""
    row = conn.execute(f"SELECT id FROM image WHERE {_usable(queue)} ORDER BY file_name LIMIT 1").fetchone()
    return None if row is None else int(row[0])


def hold_of(conn: Connection, image_id: int) -> Row | None:
    """Inside a write transaction: the image's ``held_by`` and ``lease_until`` (None: no such image).
    On PostgreSQL the image row stays locked until the transaction commits."""
    lock = " FOR UPDATE" if isinstance(conn, PgConnection) else ""
    row: Row | None = conn.execute(f"SELECT held_by, lease_until FROM image WHERE id = ?{lock}", (image_id,)).fetchone()
    return row


def mark_done(conn: Connection, image_id: int, done_by: int | None) -> None:
    """Inside the transaction that marks an image done: who finished it, hold released, and the image
    goes (back) to the review queue, its masks undecided for the new round."""
    stamp = now()
    conn.execute(
        "UPDATE image SET done_by = ?, held_by = NULL, lease_until = NULL, review = NULL, updated = ? WHERE id = ?",
        (done_by, stamp, image_id),
    )
    conn.execute(
        "UPDATE annotation SET review = NULL, review_reason = NULL, updated = ?"
        " WHERE image_id = ? AND review IS NOT NULL",
        (stamp, image_id),
    )
