"""Work assignment routes: "next image" hands each person an image no one else holds.

The page renews the lease while it is open (``POST /api/work/<id>/renew``); an abandoned image is
free again after ``WORK_LEASE_SECONDS``. The leases themselves are ``store/leases.py``.

With accounts on, an annotator or reviewer may only write masks on an image they hold
(``check_hold``); admins are not held to it. In single-user mode nothing is leased.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify

from maskloop.server.http.auth import current_account
from maskloop.server.http.db import get_db
from maskloop.server.http.json_api import fail
from maskloop.server.store import accounts, leases
from maskloop.server.store.db import Connection

bp = Blueprint("work", __name__, url_prefix="/api/work")


def lease_seconds() -> float:
    return float(current_app.config.get("WORK_LEASE_SECONDS", 120.0))


def check_hold(conn: Connection, image_id: int) -> None:
    """Inside a write transaction: 409 unless the request's account holds ``image_id`` (admins and
    single-user mode pass). On PostgreSQL the image row stays locked until the write commits."""
    account = current_account()
    if account is None or account.can("admin"):
        return
    row = leases.hold_of(conn, image_id)
    if row is None or row["held_by"] != account.id or (row["lease_until"] or 0) <= time.time():
        fail(409, f"image {image_id} is not held by {account.name}: take it with POST /api/work/next first")


def _next(queue: str) -> Response:
    from maskloop.server.http.images import get_image_or_404, image_json

    account = current_account()
    db = get_db()
    if account is None:  # single-user mode: the first image of the queue, nothing leased
        image_id = leases.first_free(db, queue)
    else:
        own = account.id if queue == "review" and not self_review_allowed(db, account) else None
        image_id = leases.take_next(db, account.id, queue, lease_seconds(), not_done_by=own)
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

    image = get_image_or_404(image_id)
    account = current_account()
    db = get_db()
    if account is not None:
        refuse_own_work(db, account, image["done_by"], f"image {image_id}")
        if not leases.take(db, account.id, image_id, "review", lease_seconds()):
            fail(409, f"image {image_id} is not waiting for review, or another reviewer holds it: pick another")
    return jsonify(image=image_json(get_image_or_404(image_id)), lease_seconds=lease_seconds())


@bp.post("/<int:image_id>/renew")
def renew_hold(image_id: int) -> Response:
    account = current_account()
    if account is None:
        return jsonify(image_id=image_id, held=False)
    if not leases.renew(get_db(), account.id, image_id, lease_seconds()):
        fail(409, f"image {image_id} is not held by {account.name} any more: take the next one")
    return jsonify(image_id=image_id, held=True, lease_seconds=lease_seconds())


@bp.post("/<int:image_id>/release")
def release_hold(image_id: int) -> Response:
    """204 when the caller held ``image_id`` (now free); 409 when they do not hold it, like ``renew``
    (the holder, if any, keeps it). Single-user mode: 204, nothing is leased."""
    account = current_account()
    if account is not None and not leases.release(get_db(), account.id, image_id):
        fail(409, f"image {image_id} is not held by {account.name}: nothing to release")
    return Response(status=204)


def self_review_allowed(conn: Connection, account: accounts.Account) -> bool:
    """Whether ``account`` may review its own work: only with ``SELF_REVIEW`` on and when it is the
    only account that can review (a team of one)."""
    if not current_app.config.get("SELF_REVIEW"):
        return False
    reviewers = [a for a in accounts.list_accounts(conn) if not a.removed and a.can("reviewer")]
    return len(reviewers) <= 1


def refuse_own_work(conn: Connection, account: accounts.Account, maker_id: int | None, what: str) -> None:
    """409 when ``account`` made ``what`` (finished the image, or authored the mask) and may not review it."""
    if maker_id is not None and maker_id == account.id and not self_review_allowed(conn, account):
        fail(409, f"{what} is {account.name}'s own work: another reviewer decides on it")


def stamp_done(conn: Connection, image_id: int, done: bool) -> None:
    """Inside the transaction that marks an image done (or not): who finished it, hold released,
    and a finished image goes (back) to the review queue, its masks undecided for the new round."""
    account = current_account()
    if done:
        leases.mark_done(conn, image_id, account.id if account else None)
