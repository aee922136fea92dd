"""``POST /api/images/<id>/decode``: one click's decoder run on the server's native onnxruntime.

A page whose own WASM decoder is still loading (a cold page: ~14 MB of wasm and 16 MB of graphs
to compile) answers its first clicks with this; it runs the same exported fp32 decoder as the
page (``exporter.decoder_runtime.OnnxDecoder``), so the low-res logits are the page's up to float
rounding and feed its undo / refine as its own would.
"""

from __future__ import annotations

import base64
import binascii
import io
import time

import numpy as np
import numpy.typing as npt
from flask import Blueprint, Response, current_app, jsonify

from maskloop import validate
from maskloop.errors import UserError
from maskloop.prompt import LOW_RES, Prompt
from maskloop.server.http.context import services, tiling
from maskloop.server.http.images import image_path, usable_image_or_fail
from maskloop.server.http.json_api import fail, json_body
from maskloop.server.jobs.embeddings import EmbeddingError
from maskloop.tiles import region_key, route_prompt

bp = Blueprint("decode", __name__, url_prefix="/api")

FIELDS = {"points", "box", "mask_input", "model_version"}
MAX_POINTS = 64


def _points(value: object, width: int, height: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """``[[x, y, label], ...]`` (image pixels, label 1 foreground / 0 background) -> (N,2) xy, (N,) labels."""
    if not isinstance(value, list) or len(value) > MAX_POINTS:
        fail(400, f"points must be a list of at most {MAX_POINTS} [x, y, label] triples, got {validate.brief(value)}")
    xy, labels = [], []
    for i, p in enumerate(value):
        if not isinstance(p, list) or len(p) != 3:
            fail(400, f"points[{i}] must be [x, y, label], got {validate.brief(p)}")
        xy.append(
            (validate.number(p[0], f"points[{i}] x", 0, width), validate.number(p[1], f"points[{i}] y", 0, height))
        )
        labels.append(validate.integer(p[2], f"points[{i}] label", 0, 1))
    return np.array(xy, np.float32).reshape(-1, 2), np.array(labels, np.float32)


def _box(value: object, width: int, height: int) -> npt.NDArray[np.float32] | None:
    """``[x0, y0, x1, y1]`` image pixels (x0 <= x1, y0 <= y1), or None."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4:
        fail(400, f"box must be [x0, y0, x1, y1] or null, got {validate.brief(value)}")
    x0, x1 = (validate.number(value[i], f"box[{i}]", 0, width) for i in (0, 2))
    y0, y1 = (validate.number(value[i], f"box[{i}]", 0, height) for i in (1, 3))
    if x1 < x0 or y1 < y0:
        fail(400, f"box must have x0 <= x1 and y0 <= y1, got {validate.brief(value)}")
    return np.array([x0, y0, x1, y1], np.float32)


def _mask_input(value: object) -> npt.NDArray[np.float32] | None:
    """Base64 of 256x256 little-endian float32 logits (an earlier run's candidate), or None."""
    if value is None:
        return None
    want = LOW_RES * LOW_RES * 4
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or len(raw) != want:
        fail(400, f"mask_input must be base64 of {want} bytes (256x256 float32 logits) or null")
    logits = np.frombuffer(raw, "<f4").reshape(LOW_RES, LOW_RES)
    if not np.isfinite(logits).all():
        fail(400, "mask_input holds NaN or infinite logits")
    return logits


@bp.post("/images/<int:image_id>/decode")
def decode(image_id: int) -> Response:
    """Run the decoder for one prompt on the image's embedding.

    Body: ``{"points": [[x, y, label], ...], "box": [x0, y0, x1, y1] | null, "mask_input": base64
    | null, "model_version": "base" | "v0002" | omitted (the active one)}``, coordinates in image
    pixels (EXIF-upright). Answers ``{"iou": [4 floats], "low_res_logits": base64 of float32
    [4, 256, 256] (little-endian), "shape": [4, 256, 256], "model_version", "ms": the run,
    "region": [x0, y0, x1, y1] | null}``.

    On a large image the prompt is routed (``maskloop.tiles.route_prompt``) to a tile or crop:
    ``region`` names it, the logits are in its frame (its image_hw = its size, at its offset), and
    ``mask_input`` must be in that same frame (an earlier answer for the same region).
    """
    body = json_body()
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        fail(400, f"unknown field(s) {', '.join(unknown)}; a decode takes {', '.join(sorted(FIELDS))}")
    row = usable_image_or_fail(image_id)
    width, height = int(row["width"]), int(row["height"])
    xy, labels = _points(body.get("points", []), width, height)
    box = _box(body.get("box"), width, height)
    if not len(xy) and box is None:
        fail(400, "a decode needs at least one point or a box")
    mask_input = _mask_input(body.get("mask_input"))
    version = body.get("model_version")
    if version is not None and not isinstance(version, str):
        fail(400, f"model_version must be a string, got {validate.brief(version)}")
    svc = services()
    try:
        decoder = svc.model.native_decoder(version)
    except UserError as exc:
        fail(404, f"model version {validate.brief(version)} is not available: {validate.brief(str(exc), 200)}")
    route = route_prompt(xy.tolist(), None if box is None else box.tolist(), width, height, tiling())
    try:
        if route.kind == "image":
            timeout = float(current_app.config["EMBEDDING_TIMEOUT"])
            data = svc.embeddings.get(row["sha256"], image_path(row), image_id, timeout=timeout)
        else:
            data = svc.embeddings.get_region(row["sha256"], image_path(row), image_id, route.region)
    except EmbeddingError as exc:
        fail(422, str(exc))
    t0 = time.perf_counter()
    offset = np.array(route.offset, np.float32)
    prompt = Prompt(
        route.hw,
        xy - offset,
        labels,
        box_xyxy=None if box is None else box - np.tile(offset, 2),
        mask_input=mask_input,
    )
    key = row["sha256"] if route.kind == "image" else f"{row['sha256']}@{region_key(route.region)}"
    low_res, iou = decoder.decode_low_res(np.load(io.BytesIO(data)), prompt, image_key=key)
    ms = (time.perf_counter() - t0) * 1000
    logits = np.ascontiguousarray(low_res, "<f4")
    return jsonify(
        {
            "iou": [float(v) for v in iou],
            "low_res_logits": base64.b64encode(logits.tobytes()).decode("ascii"),
            "shape": list(logits.shape),
            "model_version": version or svc.model.active_version(),
            "ms": round(ms, 2),
            "region": None if route.kind == "image" else list(route.region),
        }
    )
