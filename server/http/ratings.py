"""``/api/annotations/<id>/rating``: rate an accepted mask from 1 (nonsense) to 10 (pixel-perfect).

The SAM paper's human study rated masks on this scale because IoU against one ground truth
misjudges ambiguous prompts. One rating per person per mask (a new one replaces theirs), with who
and when; reviewers rate in a team, the single user otherwise (``auth.REQUIRED_ROLE``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from maskloop.server.http.annotations import get_annotation_or_404
from maskloop.server.http.auth import current_account
from maskloop.server.http.db import get_db
from maskloop.server.http.json_api import fail, json_body
from maskloop.server.store import ratings
from maskloop.server.store.db import IntegrityError, transaction

bp = Blueprint("ratings", __name__, url_prefix="/api")

#: The paper's short text for each end and the middle of the scale (the page shows it on hover).


def parse_rating(body: dict[str, Any]) -> int:
    """The ``rating`` of a request body: a JSON integer 1..10 (not 7.5, "8", true, null or a list); 400 otherwise."""
    unknown = sorted(set(body) - {"rating"})
    if unknown:
        fail(400, f'unknown field(s) {", ".join(unknown)}: send {{"rating": n}} with n an integer from 1 to 10')
    value = body.get("rating")
    if type(value) is not int or not ratings.LOWEST <= value <= ratings.HIGHEST:
        shown = "nothing" if "rating" not in body else repr(value) if not isinstance(value, str) else f'"{value}"'
        fail(400, f"rating must be an integer from 1 (nonsense) to 10 (pixel-perfect), got {shown[:40]}")
    return value


def _summary(annotation_id: int) -> dict[str, Any]:
    rows = ratings.ratings_of(get_db(), annotation_id)
    values = [int(r["rating"]) for r in rows]
    return {
        "annotation_id": annotation_id,
        "ratings": [
            {"rater": r["rater"] or None, "rater_id": r["rater_id"], "rating": int(r["rating"]), "rated": r["rated"]}
            for r in rows
        ],
        "count": len(values),
        "mean": round(sum(values) / len(values), 3) if values else None,
    }


@bp.post("/annotations/<int:annotation_id>/rating")
def rate_annotation(annotation_id: int) -> Response:
    """``{"rating": n}`` -> 200 ``{"rating", "rater", "rated", "ratings": [...], "count", "mean"}``."""
    row = get_annotation_or_404(annotation_id)
    rating = parse_rating(json_body())
    if row["status"] != "accepted":
        fail(409, f"annotation {annotation_id} is {row['status']}: only accepted masks are rated")
    account = current_account()
    rater, rater_id = (account.name, account.id) if account is not None else (ratings.SINGLE_USER, None)
    db = get_db()
    try:
        with transaction(db):
            ratings.set_rating(db, annotation_id, rating, rater, rater_id)
    except IntegrityError:  # deleted since it was read
        fail(409, f"annotation {annotation_id} was deleted meanwhile")
    mine = next(r for r in ratings.ratings_of(db, annotation_id) if r["rater"] == rater)
    return jsonify({"rating": rating, "rater": rater or None, "rated": mine["rated"], **_summary(annotation_id)})


@bp.get("/annotations/<int:annotation_id>/rating")
def list_ratings(annotation_id: int) -> Response:
    """The mask's ratings: ``{"ratings": [{"rater", "rater_id", "rating", "rated"}], "count", "mean", "scale"}``."""
    get_annotation_or_404(annotation_id)
    return jsonify({**_summary(annotation_id), "scale": {str(k): v for k, v in ratings.SCALE.items()}})
