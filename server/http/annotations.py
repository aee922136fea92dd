"""The annotations of an image: create, list, edit, delete, history (categories: ``categories.py``).

A mask arrives as COCO compressed RLE of the whole image (``size`` = [height, width] of the
image as shown) and is stored in pycocotools' canonical encoding, with ``area`` and ``bbox``
computed from it. Every write commits before the answer (see ``db.py``), together with its row in
the mask's history (``server/store/history.py``: who and when; a deleted mask is kept there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from maskloop import validate
from maskloop.engine.stats import STAGES
from maskloop.masks import MaskError, canonical_rle
from maskloop.server.http.auth import current_account
from maskloop.server.http.context import services
from maskloop.server.http.db import get_db
from maskloop.server.http.images import get_image_or_404
from maskloop.server.http.json_api import fail, json_body
from maskloop.server.http.work import check_hold
from maskloop.server.store import annotations as annotation_store
from maskloop.server.store import categories as category_store
from maskloop.server.store import history, ratings
from maskloop.server.store.annotations import STATUSES, insert_annotation, mask_columns
from maskloop.server.store.db import Connection, IntegrityError, Row, now, transaction

bp = Blueprint("annotations", __name__, url_prefix="/api")

#: Largest ``prompts`` value stored with a mask, as compact JSON (the page sends a few hundred bytes).
MAX_PROMPTS_BYTES = 64 * 1024
ANNOTATION_FIELDS = {
    "category_id",
    "segmentation",
    "stage",
    "status",
    "clicks",
    "seconds",
    "prompts",
    "model",
    "model_version",
    "predicted_iou",
    "stability_score",
}
_MODEL_VERSION = re.compile(r"^(base|v\d{4,})$")


# -- annotations -----------------------------------------------------------------------------
#: Fields of ``annotation_json`` a client may send back but not change.
READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "image_id",
        "area",
        "bbox",
        "created",
        "updated",
        "author_id",
        "author",
        "editor_id",
        "editor",
        "rating",
        "reviewer_id",
        "reviewer",
        "review",
        "review_reason",
    }
)


def annotation_json(row: Row, rating: dict | None = None) -> dict:
    """One annotation; ``segmentation`` is compressed RLE, ``bbox`` [x, y, w, h] in image pixels;
    ``rating``: its 1..10 ratings' ``count`` and ``mean``, and ``mine`` (this request's rater's)."""
    return {
        "id": row["id"],
        "image_id": row["image_id"],
        "category_id": row["category_id"],
        "segmentation": {"size": [row["rle_height"], row["rle_width"]], "counts": row["rle_counts"]},
        "area": row["area"],
        "bbox": json.loads(row["bbox"]),
        "stage": row["stage"],
        "status": row["status"],
        "clicks": row["clicks"],
        "seconds": row["seconds"],
        "prompts": json.loads(row["prompts"]) if row["prompts"] is not None else None,
        "predicted_iou": row["predicted_iou"],
        "stability_score": row["stability_score"],
        "model": row["model"],
        "model_version": row["model_version"],
        "author_id": row["author_id"],  # provenance: the account that made it (None in single-user mode)
        "author": row["author"],  # the author's account name (None in single-user mode)
        "editor_id": row["editor_id"],  # who last changed it, when that was someone (accounts on)
        "editor": row["editor"],
        "reviewer_id": row["reviewer_id"],
        "reviewer": row["reviewer"],
        "review": row["review"],  # None, reviewed or rejected
        "review_reason": row["review_reason"],
        "created": row["created"],
        "updated": row["updated"],
        "rating": rating or {"count": 0, "mean": None, "mine": None},
    }


def _ratings(image_id: int) -> dict[int, dict]:
    """The image's masks' ratings as ``annotation_json`` shows them, for this request's rater."""
    account = current_account()
    return ratings.image_ratings(get_db(), image_id, account.name if account is not None else ratings.SINGLE_USER)


def _optional(body: dict, key: str, check: Any, *args: Any) -> Any:
    """``body[key]`` checked by ``check`` (a ``validate`` function), or None when it is null."""
    return None if body[key] is None else check(body[key], key, *args)


def _annotation_fields(body: dict, image: Row, partial: bool) -> tuple[dict | None, dict]:
    """(canonical RLE or None, other validated columns) from a request body (400 on the first problem)."""
    unknown = sorted(set(body) - ANNOTATION_FIELDS - READ_ONLY_FIELDS)
    if unknown:
        fail(400, f"unknown field(s) {', '.join(unknown)}; an annotation takes {', '.join(sorted(ANNOTATION_FIELDS))}")
    out: dict[str, Any] = {}
    rle = None
    if "category_id" in body or not partial:
        cid = validate.integer(body.get("category_id"), "category_id")
        if not category_store.category_exists(get_db(), cid):
            fail(400, f"unknown category_id {cid}: create it with POST /api/categories first")
        out["category_id"] = cid
    if "segmentation" in body or not partial:
        if "segmentation" not in body:
            fail(400, 'segmentation is required: {"size": [height, width], "counts": "<COCO compressed RLE>"}')
        try:
            rle = canonical_rle(body["segmentation"], image["height"], image["width"])
        except MaskError as exc:
            fail(400, f"segmentation: {exc}")
    for key, allowed in (("stage", STAGES), ("status", STATUSES)):
        if key in body:
            if not isinstance(body[key], str) or body[key] not in allowed:
                fail(400, f"{key} must be one of {', '.join(allowed)}, got {validate.brief(body[key])}")
            out[key] = body[key]
    if "clicks" in body:
        out["clicks"] = _optional(body, "clicks", validate.integer, 0)
    if "seconds" in body:
        out["seconds"] = _optional(body, "seconds", validate.number, 0)
    for key in ("predicted_iou", "stability_score"):
        if key in body:
            out[key] = _optional(body, key, validate.number)
    if "prompts" in body:
        try:
            out["prompts"] = (
                None if body["prompts"] is None else json.dumps(body["prompts"], separators=(",", ":"), allow_nan=False)
            )
        except (ValueError, OverflowError):
            fail(400, "prompts must be plain JSON (no NaN or infinite numbers)")
        if out["prompts"] is not None and len(out["prompts"]) > MAX_PROMPTS_BYTES:
            fail(400, f"prompts is {len(out['prompts'])} bytes as JSON; at most {MAX_PROMPTS_BYTES} are stored")
    if "model" in body:
        out["model"] = _optional(body, "model", validate.text)
    if "model_version" in body:
        version = body["model_version"]
        if version is not None and not (isinstance(version, str) and _MODEL_VERSION.match(version)):
            fail(
                400,
                f"model_version must be 'base', a version name like 'v0002', or null, got {validate.brief(version)}",
            )
        out["model_version"] = version
    return rle, out


def get_annotation_or_404(annotation_id: int) -> Row:
    row = annotation_store.get_annotation(get_db(), annotation_id)
    if row is None:
        fail(404, f"annotation {annotation_id} not found")
    return row


@bp.get("/images/<int:image_id>/annotations")
def list_annotations(image_id: int) -> Response:
    """All annotations of the image; ``?status=accepted`` (or proposed, rejected) filters."""
    get_image_or_404(image_id)
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        fail(400, f"status must be one of {', '.join(STATUSES)}, got {validate.brief(status)}")
    rated = _ratings(image_id)
    rows = annotation_store.list_annotations(get_db(), image_id, status)
    return jsonify([annotation_json(r, rated.get(r["id"])) for r in rows])


@bp.post("/images/<int:image_id>/annotations")
def create_annotation(image_id: int) -> tuple[Response, int]:
    """201 ``{"id", "area", "bbox", ...}`` once the annotation is on disk."""
    image = get_image_or_404(image_id)
    if image["error"] or image["width"] is None:
        fail(422, f"image {image_id} ({image['file_name']}) cannot be annotated: {image['error']}")
    rle, fields = _annotation_fields(json_body(), image, partial=False)
    assert rle is not None  # not partial: the segmentation is required
    category_id = fields.pop("category_id")
    fields.setdefault("model", services().model.model_id)
    if fields.get("stage", "manual") in ("manual", "semi"):  # made with the model: which version, unless the page said
        fields.setdefault("model_version", services().model.active_version())
    account = current_account()
    if account is not None:
        fields["author_id"] = account.id
    db = get_db()
    try:
        with transaction(db):
            check_hold(db, image_id)
            annotation_id = insert_annotation(db, image_id, category_id, rle, **fields)
            created = record_history(db, annotation_id, "create")
    except IntegrityError:  # the category or image went away since it was checked
        fail(409, f"category {category_id} or image {image_id} was deleted meanwhile; reload and try again")
    if fields.get("status", "accepted") == "accepted":
        current_app.extensions["maskloop.training"].note_accepted(db)
    # the row as committed (read inside the transaction: no second query)
    return jsonify(annotation_json(created if created is not None else get_annotation_or_404(annotation_id))), 201


@bp.get("/annotations/<int:annotation_id>")
def get_annotation(annotation_id: int) -> Response:
    row = get_annotation_or_404(annotation_id)
    return jsonify(annotation_json(row, _ratings(row["image_id"]).get(annotation_id)))


@bp.patch("/annotations/<int:annotation_id>")
def patch_annotation(annotation_id: int) -> Response:
    """Change any of category_id, segmentation, status, stage, clicks, seconds, prompts, model."""
    row = get_annotation_or_404(annotation_id)
    image = get_image_or_404(row["image_id"])
    rle, fields = _annotation_fields(json_body(), image, partial=True)
    if rle is not None:
        fields.update(mask_columns(rle))
    if fields:
        fields["updated"] = now()
        account = current_account()
        if account is not None and account.id != row["author_id"] and account.can("reviewer"):
            fields["reviewer_id"] = account.id  # a reviewer's correction
        if account is not None:
            fields["editor_id"] = account.id  # the mask says who last changed it, beside its author
        db = get_db()
        try:
            with transaction(db):
                check_hold(db, row["image_id"])
                annotation_store.update_annotation(db, annotation_id, fields)
                record_history(db, annotation_id, "change", fields)
        except IntegrityError:
            fail(409, f"category {fields.get('category_id')} was deleted meanwhile; reload and try again")
    return jsonify(annotation_json(get_annotation_or_404(annotation_id)))


@bp.delete("/annotations/<int:annotation_id>")
def delete_annotation(annotation_id: int) -> Response:
    row = get_annotation_or_404(annotation_id)
    db = get_db()
    with transaction(db):
        check_hold(db, row["image_id"])
        record_history(db, annotation_id, "delete")  # the mask as it was: reviewers and admins still see it
        annotation_store.delete_annotation(db, annotation_id)
    return Response(status=204)


def record_history(db: Connection, annotation_id: int, action: str, changed: Iterable[str] = ()) -> Row | None:
    """Inside the write's transaction: the mask's history row for ``action`` by this request's
    account; returns the mask's row as it is now (None if there is no such mask)."""
    mask = annotation_store.get_annotation(db, annotation_id)
    if mask is not None:
        account = current_account()
        name = account.name if account is not None else None
        history.record(db, mask, action, account.id if account is not None else None, name, changed)
    return mask


@bp.get("/images/<int:image_id>/history")
def image_history(image_id: int) -> Response:
    """Every create, change and delete of the image's masks through the API, oldest first, with
    who and when; ``?deleted=1``: only the deleted masks, as they were, newest first. With
    accounts on, reviewers and admins only (``auth.REQUIRED_ROLE``)."""
    get_image_or_404(image_id)
    deleted = request.args.get("deleted", "0")
    if deleted not in ("0", "1"):
        fail(400, f"deleted must be 0 or 1, got {validate.brief(deleted)}")
    db = get_db()
    return jsonify(history.deleted_masks(db, image_id) if deleted == "1" else history.image_history(db, image_id))
