"""``/api/images/<id>/pyramid``: the tile pyramid of a large image, for the page's zoomable view.

``GET .../pyramid`` answers the manifest (image size, tile side, levels and each level's size;
``tile_url`` with ``{level}``, ``{col}``, ``{row}`` to fill in) and cuts the coarse levels when they
are missing; ``GET .../pyramid/<level>/<col>_<row>.jpg`` answers one tile (frames in
server/jobs/pyramid.py). A fine level still being cut answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import atexit
import re
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, jsonify, send_file

from maskloop.errors import UserError
from maskloop.server.http.context import services
from maskloop.server.http.images import IMMUTABLE, image_path, usable_image_or_fail
from maskloop.server.http.json_api import fail, retry_later
from maskloop.server.jobs.pyramid import Geometry, PyramidCache, TileNotReady, is_large
from maskloop.server.store.db import Row

bp = Blueprint("pyramid", __name__, url_prefix="/api")
_TILE_NAME = re.compile(r"^(\d{1,6})_(\d{1,6})\.jpg$")
KEY = "maskloop.pyramid"


def init_app(app: Flask) -> None:
    """Register the routes and the pyramid cache (``WORKDIR/pyramids``)."""
    app.register_blueprint(bp)
    cache = PyramidCache(Path(app.config["WORKDIR"]) / "pyramids")
    app.extensions[KEY] = cache
    atexit.register(cache.shutdown)  # a full cut runs in a child process: end it with the server


def precut(app: Flask) -> None:
    """Cut the pyramids of the folder's large images in the background (``PRECOMPUTE``): the coarse
    levels of every one first, so that opening any of them shows at once, then the full ones."""
    from maskloop.server.http.db import get_db
    from maskloop.server.store import images as image_store

    side = int(app.config["PYRAMID_SIDE"])
    with app.app_context():
        rows = [
            r
            for r in image_store.list_images(get_db())
            if r["sha256"] and not r["error"] and r["width"] and is_large(int(r["width"]), int(r["height"]), side)
        ]
    data_dir = Path(app.config["DATA_DIR"])
    jobs = [
        (
            r["sha256"],
            data_dir / r["file_name"],
            Geometry(int(r["width"]), int(r["height"])),
            int(r["orientation"] or 1),
        )
        for r in rows
    ]
    if jobs:
        app.extensions[KEY].precut(jobs)


def overview_file(row: Row, path: Path) -> Path | None:
    """A large image's overview tile (its coarse levels cut now if missing), from which its
    thumbnail is made, so that the image is decoded once, not once more for the thumbnail; None
    for an image shown whole."""
    width, height = int(row["width"]), int(row["height"])
    if not is_large(width, height, int(current_app.config["PYRAMID_SIDE"])):
        return None
    geometry = Geometry(width, height)
    _cache().manifest(row["sha256"], path, geometry, int(row["orientation"] or 1))
    return _cache().tile(row["sha256"], path, geometry, geometry.overview_level, 0, 0)


def _cache() -> PyramidCache:
    cache: PyramidCache = current_app.extensions[KEY]
    return cache


def _large_image_or_fail(image_id: int) -> tuple[Row, Geometry]:
    row = usable_image_or_fail(image_id)
    width, height = int(row["width"]), int(row["height"])
    side = int(current_app.config["PYRAMID_SIDE"])
    if not is_large(width, height, side):
        fail(404, f"image {image_id} is {width}x{height}: not larger than {side} px, so it is shown whole (no pyramid)")
    return row, Geometry(width, height)


@bp.get("/images/<int:image_id>/pyramid")
def manifest(image_id: int) -> Response:
    row, geometry = _large_image_or_fail(image_id)
    path = image_path(row)
    try:
        # its own slots, not the embeddings' decode slots (an embedding holds one through its encode,
        # seconds, and thumbnails of other images take them); whole-image embeddings wait meanwhile
        with _cache().view_slots, services().embeddings.views.view():
            body = _cache().manifest(row["sha256"], path, geometry, int(row["orientation"] or 1))
    except UserError as exc:
        services().mark_image_error(row["id"], str(exc))
        fail(422, f"image {image_id} ({row['file_name']}) cannot be used: {exc}")
    body["tile_url"] = f"/api/images/{image_id}/pyramid/{{level}}/{{col}}_{{row}}.jpg?v={row['sha256'][:16]}"
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/images/<int:image_id>/pyramid/<level>/<name>")
def tile(image_id: int, level: str, name: str) -> Response:
    match = _TILE_NAME.match(name)
    if match is None or not level.isdigit() or len(level) > 3:
        fail(400, f"a tile is .../pyramid/<level>/<col>_<row>.jpg with whole numbers, not {level}/{name[:40]}")
    row, geometry = _large_image_or_fail(image_id)
    assert match is not None  # fail() above does not return
    n, col, tile_row = int(level), int(match[1]), int(match[2])
    if not geometry.has_tile(n, col, tile_row):
        top = geometry.levels - 1
        cols, rows = geometry.grid(min(n, top))
        fail(
            404,
            f"no tile {col}_{tile_row} at level {n}: levels are 0..{top}, level {min(n, top)} has {cols}x{rows} tiles",
        )
    try:
        path = _cache().tile(row["sha256"], image_path(row), geometry, n, col, tile_row)
    except TileNotReady as exc:
        return retry_later(503, str(exc), 2)
    except UserError as exc:
        fail(422, f"image {image_id} ({row['file_name']}) cannot be used: {exc}")
    response = send_file(path, mimetype="image/jpeg", conditional=True, max_age=0)
    response.headers["Cache-Control"] = IMMUTABLE  # the URL carries the content's hash (?v=)
    return response
