"""``/api/images``: the catalogue, image files (orientation applied), thumbnails and embeddings."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, request, send_file

from maskloop import validate
from maskloop.errors import UserError
from maskloop.server.http.context import services, tiling
from maskloop.server.http.db import get_db
from maskloop.server.http.json_api import fail, json_body
from maskloop.server.http.work import check_hold, stamp_done
from maskloop.server.jobs import catalog, thumbnails
from maskloop.server.jobs.embedding_cache import to_float32_npy
from maskloop.server.jobs.embeddings import EmbeddingError
from maskloop.server.store import images as image_store
from maskloop.server.store.db import Row, transaction
from maskloop.tiles import check_routable, parse_region, region_key

bp = Blueprint("images", __name__, url_prefix="/api")

#: An embedding URL names one image *content* under one model, so it never changes.
IMMUTABLE = "public, max-age=31536000, immutable"
IMAGE_STATUSES = ("not_started", "in_progress", "done")
_display_lock = threading.Lock()


def image_json(row: Row) -> dict:
    """One image as the API shows it; width/height are after EXIF orientation."""
    out = {
        "id": row["id"],
        "file_name": row["file_name"],
        "width": row["width"],
        "height": row["height"],
        "num_annotations": row["num_annotations"],
        "num_proposed": row["num_proposed"],
        "status": catalog.image_status(row),
        "embedding_ready": bool(row["sha256"]) and not row["error"] and services().embeddings.is_ready(row["sha256"]),
    }
    if row["width"] and max(row["width"], row["height"]) > int(current_app.config["PYRAMID_SIDE"]):
        out["pyramid"] = True  # the page shows it as tiles: /api/images/<id>/pyramid
    if row["review"]:  # a reviewer's decision; a rejected image is back in the annotation queue
        out["review"] = row["review"]
        out["review_reason"] = row["review_reason"]
    if row["error"]:
        out["error"] = row["error"]
    elif row["sha256"] and catalog.is_animated(
        Path(current_app.config["DATA_DIR"]) / row["file_name"], row["sha256"], row["format"]
    ):
        out["animated"] = True
        out["note"] = "animated image: only its first frame is annotated"
    return out


def get_image_or_404(image_id: int) -> Row:
    row = image_store.get_image(get_db(), image_id)
    if row is None:
        fail(404, f"image {image_id} not found")
    return row


def image_path(row: Row) -> Path:
    """The real path (symlinks resolved now) of an image row's file; 404 when it has left the data
    folder, 403 when it resolves to a file outside it (a symlink, perhaps swapped in after the scan)."""
    try:
        path = catalog.resolve_inside(Path(current_app.config["DATA_DIR"]), row["file_name"])
    except catalog.OutsideDataFolder:
        fail(403, f"image {row['id']} ({row['file_name']}) is a link to a file outside the data folder: not served")
    if row["missing"] or path is None:
        fail(404, f"image {row['id']} ({row['file_name']}) is no longer in the data folder")
    return path


def usable_image_or_fail(image_id: int) -> Row:
    row = get_image_or_404(image_id)
    if row["error"]:
        fail(422, f"image {image_id} ({row['file_name']}) cannot be used: {row['error']}")
    return row


@bp.get("/images")
def list_images() -> Response:
    services().maybe_rescan()
    return jsonify([image_json(row) for row in image_store.list_images(get_db())])


@bp.post("/images/rescan")
def rescan() -> Response:
    report = services().rescan()
    return jsonify(
        {
            "added": report.added,
            "updated": report.updated,
            "removed": report.removed,
            "errors": [{"file_name": n, "error": e} for n, e in report.errors],
            "skipped": report.skipped,
        }
    )


@bp.get("/images/<int:image_id>")
def get_image(image_id: int) -> Response:
    return jsonify(image_json(get_image_or_404(image_id)))


@bp.patch("/images/<int:image_id>")
def patch_image(image_id: int) -> Response:
    """Body ``{"status": "done" | "in_progress" | "not_started"}``: only ``done`` is stored as such;
    the others clear the mark and leave the status to the annotations."""
    get_image_or_404(image_id)
    body = json_body()
    unknown = sorted(set(body) - {"status"})
    if unknown:
        fail(400, f'unknown field(s) {", ".join(unknown)}: an image takes only "status"')
    status = body.get("status")
    validate.choice(status, "status", IMAGE_STATUSES)
    db = get_db()
    with transaction(db):
        check_hold(db, image_id)
        image_store.set_done(db, image_id, status == "done")
        stamp_done(db, image_id, status == "done")
    return jsonify(image_json(get_image_or_404(image_id)))


@bp.get("/images/<int:image_id>/file")
def image_file(image_id: int) -> Response:
    """The image as a viewer shows it: the original bytes when upright and browser-readable,
    else an upright copy (JPEG for JPEG sources, PNG otherwise) cached in the work folder."""
    row = usable_image_or_fail(image_id)
    path = image_path(row)
    if row["orientation"] == 1 and row["format"] in catalog.BROWSER_FORMATS:
        return send_file(path, mimetype=catalog.BROWSER_FORMATS[row["format"]], conditional=True, max_age=0)
    display = _display_copy(row, path)
    mimetype = "image/jpeg" if display.suffix == ".jpg" else "image/png"
    return send_file(display, mimetype=mimetype, conditional=True, max_age=0)


def _display_copy(row: Row, path: Path) -> Path:
    from PIL import Image

    from maskloop.exporter.image_file import load_image_rgb
    from maskloop.exporter.regions import WHOLE_DECODE_PIXELS

    if int(row["width"]) * int(row["height"]) > WHOLE_DECODE_PIXELS:  # accepted because never decoded whole
        fail(
            422,
            f"image {row['id']} ({row['file_name']}) is too large to convert whole for display "
            f"({row['width']}x{row['height']}): its tiles are at /api/images/{row['id']}/pyramid",
        )
    suffix = ".jpg" if row["format"] == "JPEG" else ".png"
    out = Path(current_app.config["DISPLAY_DIR"]) / f"{row['sha256']}{suffix}"
    with _display_lock, services().embeddings.decode_slots:
        if not out.is_file():
            try:
                rgb = load_image_rgb(path)
            except UserError as exc:
                services().mark_image_error(row["id"], str(exc))
                fail(422, f"image {row['id']} ({row['file_name']}) cannot be used: {exc}")
            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, format="JPEG" if suffix == ".jpg" else "PNG", quality=95)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
            tmp.write_bytes(buffer.getvalue())
            os.replace(tmp, out)
    return out


@bp.get("/images/<int:image_id>/thumbnail")
def thumbnail(image_id: int) -> Response:
    """A small JPEG of the image (long side ``thumbnails.SIZE`` px, upright), made once per image
    content in ``WORKDIR/thumbnails/`` (server/jobs/thumbnails.py). Revalidated by its ETag (the
    content's sha256): the URL stays while the file may change. 404 (JSON) for an unknown image,
    422 for one that cannot be read."""
    row = usable_image_or_fail(image_id)
    etag = f"{row['sha256']}-{thumbnails.SIZE}"
    if etag in request.if_none_match:
        response = Response(status=304)
    else:
        path = image_path(row)
        root = Path(current_app.config["WORKDIR"]) / "thumbnails"
        thumb = thumbnails.thumbnail_path(root, row["sha256"])
        try:
            if not thumb.is_file():  # made once per content: never queue behind a decode for it again
                with services().embeddings.decode_slots:  # bounds the memory of large images being read
                    from maskloop.server.http.pyramid import overview_file  # (it imports this module)

                    thumb = thumbnails.ensure_thumbnail(overview_file(row, path) or path, row["sha256"], root)
        except UserError as exc:
            services().mark_image_error(row["id"], str(exc))
            fail(422, f"image {row['id']} ({row['file_name']}) cannot be used: {exc}")
        response = send_file(thumb, mimetype="image/jpeg", conditional=False, max_age=0)
    response.set_etag(etag)
    response.headers["Cache-Control"] = "no-cache"  # a browser keeps it and asks again (304) before use
    return response


@bp.get("/images/<int:image_id>/embedding")
def embedding(image_id: int) -> Response:
    """The image's SAM embedding as ``.npy``: float16 [1,256,64,64] (``?dtype=float32`` for float32).

    ``?tile=x0,y0,x1,y1`` (whole-image pixels, half-open; a tile or crop of ``maskloop.tiles``):
    the embedding of that region of a large image, computed in this request the first time. Only
    a region that routing gives (``maskloop.tiles.check_routable``) is embedded: others are a 400.

    Computed now when not cached (the image and the next few move to the front of the
    precompute queue). Strong ETag + immutable caching: the URL's content never changes for a
    given image content and model, and ``If-None-Match`` answers 304.
    """
    dtype = request.args.get("dtype", "float16")
    if dtype not in ("float16", "float32"):
        fail(400, f"dtype must be float16 or float32, got {validate.brief(dtype)}")
    row = usable_image_or_fail(image_id)
    svc = services()
    region = None
    if "tile" in request.args:
        try:
            width, height = int(row["width"]), int(row["height"])
            region = parse_region(request.args["tile"], width, height)
            check_routable(region, width, height, tiling())  # only what some prompt needs gets embedded
        except ValueError as exc:
            fail(400, f"tile: {exc}")
    etag = f"{row['sha256']}-{svc.model.model_id}-{dtype}" + (f"-{region_key(region)}" if region else "")
    if etag in request.if_none_match:
        response = Response(status=304)
        response.set_etag(etag)
        response.headers["Cache-Control"] = IMMUTABLE
        return response
    path = image_path(row)
    try:
        if region is not None:
            data = svc.embeddings.get_region(row["sha256"], path, image_id, region)
        else:
            svc.embeddings.prioritize(_this_and_next(row, path, int(current_app.config["PREFETCH"])))
            timeout = float(current_app.config["EMBEDDING_TIMEOUT"])
            data = svc.embeddings.get(row["sha256"], path, image_id, timeout=timeout)
    except EmbeddingError as exc:
        fail(422, str(exc))
    if dtype == "float32":
        data = to_float32_npy(data)
    response = Response(data, mimetype="application/octet-stream")
    response.set_etag(etag)
    response.headers["Cache-Control"] = IMMUTABLE
    name = f"embedding-{image_id}" + (f"-{region_key(region)}" if region else "")
    response.headers["Content-Disposition"] = f'inline; filename="{name}-{dtype}.npy"'
    return response


def _this_and_next(row: Row, path: Path, count: int) -> list[tuple[str, Path, int]]:
    """(sha, path, id) of this image and the ``count`` usable images after it in list order."""
    data_dir = Path(current_app.config["DATA_DIR"])
    following = image_store.usable_images_after(get_db(), row["file_name"], count)
    return [(row["sha256"], path, row["id"])] + [(r["sha256"], data_dir / r["file_name"], r["id"]) for r in following]


@bp.get("/progress")
def progress() -> Response:
    """Embedding precompute progress: ``{"done", "total", "running"}`` (usable images only)."""
    return jsonify(services().embeddings.progress())
