"""Review: a reviewer takes a finished image (``POST /api/work/review/next``), corrects masks if
needed (``PATCH /api/annotations/<id>``, which records them as the reviewer), then accepts or
rejects it with a reason. Accepted: the image and its accepted masks are ``reviewed``. Rejected:
they are ``rejected`` with the reason, and the image goes back to the annotation queue."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from maskloop.server import validate
from maskloop.server.auth import current_account
from maskloop.server.db import get_db, now, transaction
from maskloop.server.http import fail, json_body
from maskloop.server.work import check_hold

bp = Blueprint("review", __name__, url_prefix="/api")
DECISIONS = {"accept": "reviewed", "reject": "rejected"}


@bp.post("/images/<int:image_id>/review")
def decide(image_id: int) -> Response:
    """Body ``{"decision": "accept" | "reject", "reason": "..."}`` (a reason is required to reject)."""
    from maskloop.server.images import get_image_or_404, image_json

    image = get_image_or_404(image_id)
    body = json_body()
    unknown = sorted(set(body) - {"decision", "reason"})
    if unknown:
        fail(400, f"unknown field(s) {', '.join(unknown)}: a review takes decision and reason")
    decision = body.get("decision")
    if decision not in DECISIONS:
        fail(400, f"decision must be accept or reject, got {decision!r}")
    reason = body.get("reason")
    if reason is not None:
        reason = validate.text(reason, "reason", max_length=2000)
    if decision == "reject" and not reason:
        fail(400, "a rejection needs a reason: the annotator reads it")
    if not image["done"]:
        fail(409, f"image {image_id} is not finished: only finished images are reviewed")
    account = current_account()
    reviewer = account.id if account is not None else None
    review = DECISIONS[decision]
    db = get_db()
    stamp = now()
    with transaction(db):
        check_hold(db, image_id)
        db.execute(
            "INSERT INTO review_log (image_id, reviewer_id, annotator_id, decision, reason, masks, created)"
            " SELECT id, ?, done_by, ?, ?, (SELECT count(*) FROM annotation WHERE image_id = ? AND status = 'accepted'),"
            " ? FROM image WHERE id = ?",
            (reviewer, review, reason, image_id, stamp, image_id),
        )
        db.execute(
            "UPDATE annotation SET review = ?, review_reason = ?, reviewer_id = ?, updated = ?"
            " WHERE image_id = ? AND status = 'accepted'",
            (review, reason, reviewer, stamp, image_id),
        )
        db.execute(
            "UPDATE image SET review = ?, review_reason = ?, reviewed_by = ?, done = ?, held_by = NULL,"
            " lease_until = NULL, updated = ? WHERE id = ?",
            (review, reason, reviewer, int(review == "reviewed"), stamp, image_id),
        )
    return jsonify(image_json(get_image_or_404(image_id)))
