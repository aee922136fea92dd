"""A stored mask as editable polygons and back (the page's polygon editing, issue 23).

``GET /api/annotations/<id>/polygons?tolerance=T``  ``{"rings": [{"points": [x0, y0, …],
    "hole": bool}, …], "tolerance": T, "vertices": N}``: the mask's outer rings and holes,
    vertices on pixel corners, simplified by Douglas-Peucker at T pixels (0 to 50; 0: exact)
``PUT /api/annotations/<id>/polygons {"rings": [...]}``  the rings filled (holes cut out) become
    the stored mask; the edit is added to the mask's ``prompts.edits`` (its provenance)
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
from flask import Blueprint, Response, jsonify, request

from maskloop import masks, validate
from maskloop.errors import UserError
from maskloop.server.http.annotations import annotation_json, get_annotation_or_404, record_history
from maskloop.server.http.auth import current_account
from maskloop.server.http.db import get_db
from maskloop.server.http.json_api import fail, json_body
from maskloop.server.http.work import check_hold
from maskloop.server.jobs.polygons import MAX_TOLERANCE, mask_rings, parse_rings, rings_to_mask
from maskloop.server.store import annotations as annotation_store
from maskloop.server.store.annotations import mask_columns
from maskloop.server.store.db import now, transaction

bp = Blueprint("polygons", __name__, url_prefix="/api")


def _mask(row: Any) -> npt.NDArray[np.uint8]:
    return masks.decode({"size": [row["rle_height"], row["rle_width"]], "counts": row["rle_counts"]})


@bp.get("/annotations/<int:annotation_id>/polygons")
def get_polygons(annotation_id: int) -> Response:
    row = get_annotation_or_404(annotation_id)
    raw = request.args.get("tolerance", "0")
    try:
        tolerance = validate.number(float(raw), "tolerance", 0.0, MAX_TOLERANCE)
    except ValueError:
        fail(400, f"tolerance must be a number of pixels from 0 to {MAX_TOLERANCE:g}, not {validate.brief(raw)}")
    except UserError as exc:
        fail(400, str(exc))
    rings = mask_rings(_mask(row), tolerance)
    return jsonify({"rings": rings, "tolerance": tolerance, "vertices": sum(len(r["points"]) // 2 for r in rings)})


@bp.put("/annotations/<int:annotation_id>/polygons")
def put_polygons(annotation_id: int) -> Response:
    row = get_annotation_or_404(annotation_id)
    body = json_body()
    height, width = row["rle_height"], row["rle_width"]
    try:
        rings = parse_rings(body.get("rings"), height, width)
    except UserError as exc:
        fail(400, str(exc))
    mask = rings_to_mask(rings, height, width)
    if not mask.any():
        fail(400, "the rings enclose no pixel: the mask would be empty")
    prompts = json.loads(row["prompts"]) if row["prompts"] else {}
    if not isinstance(prompts, dict):
        prompts = {"stored": prompts}
    edit = {"mode": "polygon", "vertices": sum(len(r["points"]) // 2 for r in rings)}
    prompts["edits"] = [*prompts.get("edits", []), edit]
    fields = {
        **mask_columns(masks.encode(mask)),
        "prompts": json.dumps(prompts, separators=(",", ":")),
        "updated": now(),
    }
    account = current_account()
    if account is not None:
        fields["editor_id"] = account.id
    db = get_db()
    with transaction(db):
        check_hold(db, row["image_id"])
        annotation_store.update_annotation(db, annotation_id, fields)
        record_history(db, annotation_id, "change", fields)
    return jsonify(annotation_json(get_annotation_or_404(annotation_id)))
