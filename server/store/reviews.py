"""Review decisions: a reviewer's verdict on a finished image (logged in ``review_log``) or on one
of its masks. A decided image is released and stays done only when reviewed. Callers hold the
transaction (``db.transaction``)."""

from __future__ import annotations

from maskloop.server.store.db import Connection, now


def decide_image(conn: Connection, image_id: int, review: str, reason: str | None, reviewer_id: int | None) -> None:
    """Records the image's ``review`` (reviewed, rejected): logged, on its undecided accepted masks, on the image."""
    stamp = now()
    conn.execute(
        "INSERT INTO review_log (image_id, reviewer_id, annotator_id, decision, reason, masks, created)"
        " SELECT id, ?, done_by, ?, ?, (SELECT count(*) FROM annotation WHERE image_id = ? AND status = 'accepted'),"
        " ? FROM image WHERE id = ?",
        (reviewer_id, review, reason, image_id, stamp, image_id),
    )
    conn.execute(
        "UPDATE annotation SET review = ?, review_reason = ?, reviewer_id = ?, updated = ?"
        " WHERE image_id = ? AND status = 'accepted' AND review IS NULL",
        (review, reason, reviewer_id, stamp, image_id),
    )
    conn.execute(
        "UPDATE image SET review = ?, review_reason = ?, reviewed_by = ?, done = ?, held_by = NULL,"
        " lease_until = NULL, updated = ? WHERE id = ?",
        (review, reason, reviewer_id, int(review == "reviewed"), stamp, image_id),
    )


def decide_mask(conn: Connection, annotation_id: int, review: str, reason: str | None, reviewer_id: int | None) -> None:
    """Records ``review`` (reviewed or rejected) of one mask; it stands when its image is decided."""
    conn.execute(
        "UPDATE annotation SET review = ?, review_reason = ?, reviewer_id = ?, updated = ? WHERE id = ?",
        (review, reason, reviewer_id, now(), annotation_id),
    )
