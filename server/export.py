"""``GET /api/export/coco``: the store as COCO JSON (see ``coco.py`` for the rules)."""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from maskloop.errors import UserError
from maskloop.server.coco import STATUSES, export_coco
from maskloop.server.db import get_db
from maskloop.server.http import fail

bp = Blueprint("export", __name__, url_prefix="/api/export")


@bp.get("/coco")
def coco() -> Response:
    """``?format=rle|polygon`` (default rle), ``?tolerance=<px>`` for polygons (default 0),
    ``?status=accepted|proposed|rejected|all`` (comma-separated; default accepted),
    ``?download=1`` for a Content-Disposition attachment."""
    fmt = request.args.get("format", "rle")
    try:
        tolerance = float(request.args.get("tolerance", "0"))
    except ValueError:
        fail(400, f"tolerance must be a number of pixels, got {request.args.get('tolerance')!r}")
    status = request.args.get("status", "accepted")
    statuses = STATUSES if status == "all" else tuple(s.strip() for s in status.split(","))
    try:
        data = export_coco(get_db(), fmt=fmt, tolerance=tolerance, statuses=statuses)
    except UserError as exc:
        fail(400, str(exc))
    response = Response(json.dumps(data, separators=(",", ":")), mimetype="application/json")
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f'attachment; filename="maskloop-coco-{fmt}.json"'
    return response
