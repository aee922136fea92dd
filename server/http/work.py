"""Work assignment: "next image" hands each person an image no one else holds.

A hold is a lease in the ``image`` row (``held_by``, ``lease_until``): taken by one conditional
``UPDATE ... WHERE id = (SELECT ... [FOR UPDATE SKIP LOCKED]) AND <still free>``, so two
people never hold one image, whichever server process they talk to: SQLite runs writers one at
a time (``BEGIN IMMEDIATE``), and on PostgreSQL concurrent takers skip each other's locked rows
and the repeated condition rejects a row that was taken meanwhile. The page renews the lease
while it is open (``POST /api/work/<id>/renew``); an abandoned image is free again after
``WORK_LEASE_SECONDS``.

With accounts on, an annotator or reviewer may only write masks on an image they hold
(``check_hold``); admins are not held to it. In single-user mode nothing is leased.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify

from maskloop.server.http.auth import current_account
from maskloop.server.http.db import get_db
from maskloop.server.http.json_api import fail
from maskloop.server.store.db import Connection, PgConnection, now, transaction

bp = Blueprint("work", __name__, url_prefix="/api/work")

#: What each queue hands out: images to annotate, and finished images not yet reviewed.
QUEUES = {
    "annotate": "done = 0",
    "review": "done = 1 AND review IS NULL",
}


def lease_seconds() -> float:
    return float(current_app.config.get("WORK_LEASE_SECONDS", 120.0))


def _usable(queue: str) -> str:
    """SQL condition: an image of ``queue`` that can be handed out (present and readable)."""
    return f"missing = 0 AND error IS NULL AND {QUEUES[queue]}"


def take_next(conn: Connection, account_id: int, queue: str, seconds: float) -> int | None:
    """Lease the next free image of ``queue`` to ``account_id`` (or renew the one it holds); its id or None."""
    t = time.time()
    usable = _usable(queue)
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


def take(conn: Connection, account_id: int, image_id: int, queue: str, seconds: float) -> bool:
    """Lease ``image_id`` of ``queue`` to ``account_id`` if it is free, expired or already theirs."""
    t = time.time()
    with transaction(conn):
        rows = conn.execute(
            f"UPDATE image SET held_by = ?, lease_until = ? WHERE id = ? AND {_usable(queue)}"
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


def release(conn: Connection, account_id: int, image_id: int) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE image SET held_by = NULL, lease_until = NULL WHERE id = ? AND held_by = ?", (image_id, account_id)
        )


def check_hold(conn: Connection, image_id: int) -> None:
    """Inside a write transaction: 409 unless the request's account holds ``image_id`` (admins and
    single-user mode pass). On PostgreSQL the image row stays locked until the write commits."""
    account = current_account()
    if account is None or account.can("admin"):
        return
    lock = " FOR UPDATE" if isinstance(conn, PgConnection) else ""
    row = conn.execute(f"SELECT held_by, lease_until FROM image WHERE id = ?{lock}", (image_id,)).fetchone()
    if row is None or row["held_by"] != account.id or (row["lease_until"] or 0) <= time.time():
        fail(409, f"image {image_id} is not held by {account.name}: take it with POST /api/work/next first")


def _next(queue: str) -> Response:
    from maskloop.server.http.images import get_image_or_404, image_json

    account = current_account()
    db = get_db()
    if account is None:  # single-user mode: the first image of the queue, nothing leased
        row = db.execute(
            f"SELECT id FROM image WHERE missing = 0 AND error IS NULL AND {QUEUES[queue]} ORDER BY file_name LIMIT 1"
        ).fetchone()
        image_id = None if row is None else int(row[0])
    else:
        image_id = take_next(db, account.id, queue, lease_seconds())
    if image_id is None:
        return jsonify(image=None, lease_seconds=lease_seconds())
    return jsonify(image=image_json(get_image_or_404(image_id)), lease_seconds=lease_seconds())


@bp.post("/next")
def next_image() -> Response:
    """``{"image": {...} | null, "lease_seconds"}``: an image to annotate that no one else holds."""
    return _next("annotate")


@bp.post("/review/next")
def next_review() -> Response:
    """``{"image": {...} | null, "lease_seconds"}``: a finished, unreviewed image for a reviewer."""
    return _next("review")


@bp.post("/review/<int:image_id>")
def take_review(image_id: int) -> Response:
    """``{"image": {...}, "lease_seconds"}``: this finished, unreviewed image, for the reviewer who
    picked it from the list; 409 when someone else holds it or it is not waiting for review."""
    from maskloop.server.http.images import get_image_or_404, image_json

    get_image_or_404(image_id)
    account = current_account()
    if account is not None and not take(get_db(), account.id, image_id, "review", lease_seconds()):
        fail(409, f"image {image_id} is not waiting for review, or another reviewer holds it: pick another")
    return jsonify(image=image_json(get_image_or_404(image_id)), lease_seconds=lease_seconds())


@bp.post("/<int:image_id>/renew")
def renew_hold(image_id: int) -> Response:
    account = current_account()
    if account is None:
        return jsonify(image_id=image_id, held=False)
    if not renew(get_db(), account.id, image_id, lease_seconds()):
        fail(409, f"image {image_id} is not held by {account.name} any more: take the next one")
    return jsonify(image_id=image_id, held=True, lease_seconds=lease_seconds())


@bp.post("/<int:image_id>/release")
def release_hold(image_id: int) -> Response:
    account = current_account()
    if account is not None:
        release(get_db(), account.id, image_id)
    return Response(status=204)


def stamp_done(conn: Connection, image_id: int, done: bool) -> None:
    """Inside the transaction that marks an image done (or not): who finished it, hold released,
    and a finished image goes (back) to the review queue, its masks undecided for the new round."""
    account = current_account()
    if done:
        stamp = now()
        conn.execute(
            "UPDATE image SET done_by = ?, held_by = NULL, lease_until = NULL, review = NULL, updated = ? WHERE id = ?",
            (account.id if account else None, stamp, image_id),
        )
        conn.execute(
            "UPDATE annotation SET review = NULL, review_reason = NULL, updated = ?"
            " WHERE image_id = ? AND review IS NOT NULL",
            (stamp, image_id),
        )
