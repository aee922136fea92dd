"""``GET /api/export/coco`` (the store as COCO JSON, see ``coco.py``) and ``GET /api/export/yolo-seg``,
``GET /api/export/voc`` (the store as a data set folder, images included, in a zip; see
``export_dataset.py``).

The export itself runs in a child process and is cached while the store is unchanged
(``export_cache.py``), so exports cannot starve annotation requests.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response, request
from werkzeug.wsgi import wrap_file

from maskloop import validate
from maskloop.server.http.context import services
from maskloop.server.http.json_api import fail, retry_later
from maskloop.server.jobs.coco import FORMATS, MAX_TOLERANCE, REVIEWS, STATUSES
from maskloop.server.jobs.export_cache import ExportBusy, ExportFailed, ExportKind
from maskloop.server.jobs.export_dataset import FOLDER_FORMATS
from maskloop.server.jobs.export_dataset import FORMATS as TARGETS

bp = Blueprint("export", __name__, url_prefix="/api/export")


def _kind(target: str) -> ExportKind:
    """The export the query string asks for; 400 on a bad value."""
    fmt = request.args.get("format", "rle") if target == "coco" else "rle"
    if fmt not in FORMATS:
        fail(400, f"unknown format {validate.brief(fmt)}: use rle or polygon")
    raw = request.args.get("tolerance", "0")
    try:
        tolerance = float(raw)
    except ValueError:
        fail(400, f"tolerance must be a number of pixels, got {validate.brief(raw)}")
    tolerance = validate.number(tolerance, "tolerance", 0.0, MAX_TOLERANCE)
    status = request.args.get("status", "accepted")
    statuses = STATUSES if status == "all" else tuple(s.strip() for s in status.split(","))
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        fail(400, f"unknown annotation status {validate.brief(bad[0])}: use accepted, proposed, rejected or all")
    review = request.args.get("review")
    if review is not None and review not in REVIEWS:
        fail(400, f"unknown review status {validate.brief(review)}: use {', '.join(REVIEWS)}")
    return ExportKind(fmt, tolerance, tuple(s for s in STATUSES if s in statuses), review, target)


def _send(kind: ExportKind, download_name: str | None) -> Response:
    """The export file of ``kind`` as the answer (503 when too many exports are waiting or it failed)."""
    try:
        file = services().exports.open(kind)
    except ExportBusy as exc:
        return retry_later(503, str(exc), 5)
    except ExportFailed as exc:
        fail(503, str(exc))
    response = Response(wrap_file(request.environ, file), mimetype=kind.mimetype, direct_passthrough=True)
    response.content_length = os.fstat(file.fileno()).st_size
    if download_name:
        response.headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
    return response


@bp.get("/coco")
def coco() -> Response:
    """``?format=rle|polygon`` (default rle), ``?tolerance=<px>`` for polygons (default 0, at most 10000),
    ``?status=accepted|proposed|rejected|all`` (comma-separated; default accepted),
    ``?review=reviewed|rejected|unreviewed`` (default: any),
    ``?download=1`` for a Content-Disposition attachment. 503 when too many exports are waiting."""
    kind = _kind("coco")
    return _send(kind, f"maskloop-coco-{kind.fmt}.json" if request.args.get("download") else None)


@bp.get("/<target>")
def dataset(target: str) -> Response:
    """``/api/export/yolo-seg`` or ``/api/export/voc``: a zip of the data set folder (one top folder,
    ``maskloop-<target>/``), always as an attachment; ``?tolerance``, ``?status``, ``?review`` as for
    COCO (the tolerance simplifies YOLO polygons). 400 when an image is gone from the data folder."""
    if target not in FOLDER_FORMATS:
        fail(404, f"unknown export format {validate.brief(target)}: use {', '.join(TARGETS)}")
    return _send(_kind(target), f"maskloop-{target}.zip")
