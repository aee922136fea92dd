"""``/api/categories``: list (in the chosen order), create, rename and recolour, reorder, delete
(refused while masks use it, unless they are moved to another category in the same transaction)."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from maskloop import validate
from maskloop.server.http.db import get_db
from maskloop.server.http.json_api import fail, json_body
from maskloop.server.store import categories as category_store
from maskloop.server.store.db import Row, transaction

bp = Blueprint("categories", __name__, url_prefix="/api")

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def category_json(row: Row) -> dict:
    """One category; ``position``: its place in the list (None until the categories are reordered)."""
    return {
        "id": row["id"],
        "position": row["position"],
        "name": row["name"],
        "color": row["color"],
        "supercategory": row["supercategory"],
        "num_annotations": row["num_annotations"],
    }


def _category_fields(body: dict, partial: bool) -> dict:
    unknown = sorted(set(body) - {"name", "color", "supercategory"})
    if unknown:
        fail(400, f"unknown field(s) {', '.join(unknown)}: a category takes name, color, supercategory")
    out = {}
    if "name" in body or not partial:
        out["name"] = validate.text(body.get("name"), "category name", strip_check=True)
    if "color" in body and body["color"] is not None:
        if not isinstance(body["color"], str) or not _COLOR.fullmatch(body["color"]):
            fail(400, f"color must look like '#rrggbb', got {validate.brief(body['color'])}")
        out["color"] = body["color"].lower()
    if "supercategory" in body:
        if body["supercategory"] is not None:
            validate.text(body["supercategory"], "supercategory")
        out["supercategory"] = body["supercategory"]
    return out


def get_category_or_404(category_id: int) -> Row:
    row = category_store.get_category(get_db(), category_id)
    if row is None:
        fail(404, f"category {category_id} not found")
    return row


@bp.get("/categories")
def list_categories() -> Response:
    return jsonify([category_json(r) for r in category_store.list_categories(get_db())])


@bp.post("/categories")
def create_category() -> tuple[Response, int]:
    fields = _category_fields(json_body(), partial=False)
    new_id = category_store.add_category(get_db(), fields["name"], fields.get("color"), fields.get("supercategory"))
    if new_id is None:
        fail(409, f"a category named {validate.brief(fields['name'])} already exists")
    return jsonify(category_json(get_category_or_404(new_id))), 201


@bp.patch("/categories/<int:category_id>")
def patch_category(category_id: int) -> Response:
    get_category_or_404(category_id)
    fields = _category_fields(json_body(), partial=True)
    if fields and not category_store.update_category(get_db(), category_id, fields):
        fail(409, f"a category named {validate.brief(fields.get('name'))} already exists")
    return jsonify(category_json(get_category_or_404(category_id)))


@bp.put("/categories/order")
def order_categories() -> Response:
    """Body ``{"ids": [every category id, in the new order]}``: the list (and the page's number
    keys) follow it."""
    body = json_body()
    ids = body.get("ids")
    if set(body) != {"ids"} or not isinstance(ids, list):
        fail(400, 'send {"ids": [every category id, in the new order]}')
    order = [validate.integer(i, "ids[]") for i in ids]
    if not category_store.reorder_categories(get_db(), order):
        fail(400, "ids must name every category exactly once (GET /api/categories lists them)")
    return jsonify([category_json(r) for r in category_store.list_categories(get_db())])


@bp.delete("/categories/<int:category_id>")
def delete_category(category_id: int) -> Response:
    """Delete an unused category; ``?move_to=ID`` first gives its masks category ID (recorded in
    each mask's history), in the same transaction."""
    row = get_category_or_404(category_id)
    move_to = request.args.get("move_to")
    if move_to is not None:
        if not move_to.isdigit() or len(move_to) > 18:
            fail(400, f"move_to must be a category id, got {validate.brief(move_to)}")
        target = int(move_to)
        if target == category_id:
            fail(400, "move_to names the category being deleted: choose another one")
        get_category_or_404(target)
        _move_masks(category_id, target)
    used = category_store.delete_category(get_db(), category_id)
    if used:
        fail(
            409,
            f"category {row['name']!r} is used by {used} annotation(s): move them (?move_to=ID) or delete them first",
        )
    return Response(status=204)


def _move_masks(from_id: int, to_id: int) -> None:
    from maskloop.server.http.annotations import record_history

    db = get_db()
    with transaction(db):
        for annotation_id in category_store.move_annotations(db, from_id, to_id):
            record_history(db, annotation_id, "change", ("category_id",))
