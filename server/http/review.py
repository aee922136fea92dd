"""Review: a reviewer takes a finished image (``POST /api/work/review/next``, or one of them by
id: ``POST /api/work/review/<id>``), corrects masks if needed (``PATCH /api/annotations/<id>``,
which records them as the reviewer), may decide on single masks first (``POST
/api/annotations/<id>/review``), then accepts or rejects the image with a reason. Accepted: the
image and its masks not decided one by one are ``reviewed``. Rejected: they are ``rejected`` with
the reason, and the image goes back to the annotation queue. Marking the image done again starts
a new round: its masks' decisions are cleared (``work.stamp_done``); ``review_log`` keeps them.

Nobody reviews their own work: a reviewer is not handed images they finished, and deciding on
an image they finished or a mask they made is a 409, unless ``SELF_REVIEW`` is on and they are
the only account that can review (``work.self_review_allowed``)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from maskloop import validate
from maskloop.server.http.auth import current_account
from maskloop.server.http.db import get_db
from maskloop.server.http.json_api import fail, json_body
from maskloop.server.http.work import check_hold, refuse_own_work
from maskloop.server.store import reviews
from maskloop.server.store.db import transaction

bp = Blueprint("review", __name__, url_prefix="/api")
DECISIONS = {"accept": "reviewed", "reject": "rejected"}


@bp.post("/images/<int:image_id>/review")
def decide(image_id: int) -> Response:
    """Body ``{"decision": "accept" | "reject", "reason": "..."}`` (a reason is required to reject)."""
    from maskloop.server.http.images import get_image_or_404, image_json

    image = get_image_or_404(image_id)
    review, reason = _decision(json_body())
    if not image["done"]:
        fail(409, f"image {image_id} is not finished: only finished images are reviewed")
    account = current_account()
    reviewer = account.id if account is not None else None
    db = get_db()
    if account is not None:
        refuse_own_work(db, account, image["done_by"], f"image {image_id}")
    with transaction(db):
        check_hold(db, image_id)
        reviews.decide_image(db, image_id, review, reason, reviewer)
    return jsonify(image_json(get_image_or_404(image_id)))


def _decision(body: dict) -> tuple[str, str | None]:
    """(review status, reason) of a body ``{"decision", "reason"?}``; 400 when it is not one."""
    unknown = sorted(set(body) - {"decision", "reason"})
    if unknown:
        fail(400, f"unknown field(s) {', '.join(unknown)}: a review takes decision and reason")
    decision = body.get("decision")
    if not isinstance(decision, str) or decision not in DECISIONS:
        fail(400, f"decision must be accept or reject, got {validate.brief(decision)}")
    reason = body.get("reason")
    if reason is not None:
        reason = validate.text(reason, "reason", max_length=2000)
    if decision == "reject" and not reason:
        fail(400, "a rejection needs a reason: the annotator reads it")
    return DECISIONS[decision], reason


@bp.post("/annotations/<int:annotation_id>/review")
def decide_mask(annotation_id: int) -> Response:
    """One mask of a finished image under review: ``{"decision": "accept" | "reject", "reason"}``.
    Its decision stands when the image is decided; it can be changed until then."""
    from maskloop.server.http.annotations import annotation_json, get_annotation_or_404, record_history
    from maskloop.server.http.images import get_image_or_404

    row = get_annotation_or_404(annotation_id)
    review, reason = _decision(json_body())
    image = get_image_or_404(row["image_id"])
    if not image["done"] or image["review"]:
        fail(409, f"image {image['id']} is not waiting for review: only masks of finished, undecided images are")
    if row["status"] != "accepted":
        fail(409, f"annotation {annotation_id} is {row['status']}: only accepted masks are reviewed")
    account = current_account()
    db = get_db()
    if account is not None:
        refuse_own_work(db, account, row["author_id"], f"annotation {annotation_id}")
    with transaction(db):
        check_hold(db, image["id"])
        reviews.decide_mask(db, annotation_id, review, reason, account.id if account is not None else None)
        record_history(db, annotation_id, "change", ("review", "review_reason"))
    return jsonify(annotation_json(get_annotation_or_404(annotation_id)))
