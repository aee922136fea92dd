"""The page and its assets: ``/`` and ``/web/...`` from ``web/``, onnxruntime-web from its npm
package, and the active model's exported decoder under ``/models/``. Nothing comes from a CDN.

URLs that name a version (``/vendor/ort/<ort version>/...``, ``/models/<model version>/...``)
never change, so browsers cache them for good; large files go gzip-compressed where that pays
(server/compress.py)."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, send_file, send_from_directory
from werkzeug.security import safe_join

from maskloop.errors import UserError
from maskloop.server.http import compress
from maskloop.server.http.context import services, tiling
from maskloop.server.http.json_api import fail
from maskloop.server.store import ratings
from maskloop.server.store.db import CATEGORY_PALETTE

bp = Blueprint("static", __name__)

#: Types browsers insist on: WASM streaming compilation needs application/wasm, module
#: scripts (and workers) need a JavaScript type.
MIME_TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".onnx": "application/octet-stream",
    ".json": "application/json",
    ".map": "application/json",
    ".html": "text/html",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
ORT_DIST = Path("node_modules") / "onnxruntime-web" / "dist"
ORT_ENTRY = "ort.wasm.min.mjs"  # the build the page runs: WASM only (its worker is the page's own)
IMMUTABLE = "public, max-age=31536000, immutable"


def _send(folder: Path, filename: str, immutable: bool = False) -> Response:
    """A file under ``folder`` (``safe_join`` refuses paths that leave it): revalidated by ETag, or
    cached for good when its URL names a version; gzip-compressed where that pays."""
    mimetype = MIME_TYPES.get(Path(filename).suffix.lower())
    path = safe_join(str(folder), filename)
    gz = None
    if path and Path(path).is_file() and "gzip" in request.accept_encodings:
        gz = compress.gzip_copy(Path(path), gzip_dir_for(Path(path), current_app.config))
    if gz is None:
        response = send_from_directory(folder, filename, mimetype=mimetype, conditional=True, max_age=0)
    else:
        response = send_file(gz, mimetype=mimetype, conditional=True, max_age=0)
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    if immutable:
        response.headers["Cache-Control"] = IMMUTABLE
    return response


def gzip_dir_for(path: Path, config: Mapping[str, Any]) -> Path:
    """Where ``path``'s gzip copy is kept: the work folder's ``gzip/`` for the project's own files (a
    fine-tuned version's decoder), else the shared ``GZIP_DIR`` (onnxruntime-web, the page, the base
    decoder: the same files for every folder)."""
    workdir = Path(config["WORKDIR"])
    return workdir / "gzip" if path.resolve().is_relative_to(workdir) else Path(config["GZIP_DIR"])


@cache
def ort_version(web_dir: str) -> str:
    """The installed onnxruntime-web's version (names its immutable URLs)."""
    package = Path(web_dir) / ORT_DIST.parent / "package.json"
    try:
        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def ort_files(web_dir: Path) -> list[Path]:
    """onnxruntime-web's files the page loads (what is worth compressing ahead of the first page)."""
    dist = web_dir / ORT_DIST
    return [dist / ORT_ENTRY, dist / "ort-wasm-simd-threaded.mjs", dist / "ort-wasm-simd-threaded.wasm"]


def _web_dir() -> Path:
    return Path(current_app.config["WEB_DIR"])


@bp.get("/")
def index() -> Response:
    if not (_web_dir() / "index.html").is_file():
        fail(404, f"the page is not there: {_web_dir() / 'index.html'} is missing")
    return _send(_web_dir(), "index.html")


@bp.get("/web/<path:filename>")
def web_file(filename: str) -> Response:
    # send_from_directory normalises "a/../x" and "./x"; check the name it will really open
    if posixpath.normpath(filename).split("/", 1)[0] == "node_modules":
        fail(404, f"not found: /web/{filename}")
    return _send(_web_dir(), filename)


@bp.get("/vendor/ort/<path:filename>")
def ort_file(filename: str) -> Response:
    """onnxruntime-web's ``.mjs``/``.wasm`` files, from ``web/node_modules`` (``npm ci`` in web/)."""
    return _send(_web_dir() / ORT_DIST, filename)


@bp.get("/vendor/ort/v<version>/<path:filename>")
def ort_versioned_file(version: str, filename: str) -> Response:
    """The same files under the installed version's URL (``ort_url`` in ``/api/model``): cached for good."""
    if version != ort_version(str(_web_dir())):
        fail(404, f"onnxruntime-web {version} is not installed (this server has {ort_version(str(_web_dir()))})")
    return _send(_web_dir() / ORT_DIST, filename, immutable=True)


@bp.get("/api/model")
def model_manifest() -> Response:
    """The active model version's decoder manifest plus where to fetch things.

    Adds: ``model_id``; ``model_version`` (``base`` or a fine-tuned version); ``url`` per entry of
    ``decoders`` (``/models/<version>/<file>?sha256=<16 hex>``, immutable); ``decoder_url`` (fp32: the int8 export
    is smaller but its masks drift, see the manifest's ``verify``); ``embedding_url`` (``{id}`` = image id) and
    ``embedding_transfer_dtype`` (float16: what the embedding endpoint sends by default);
    ``ort_url``: onnxruntime-web's entry module under its version's (immutable) URL; ``url`` of
    ``prefix.prefix`` and ``prefix.prompt`` when the decoder is also exported split in two;
    ``category_palette`` (the colours new categories get in turn, so the page offers the same);
    ``tiling`` (``maskloop.tiles.Tiling``: how a large image's prompts are routed to tiles).
    """
    svc = services()
    try:
        manifest = svc.model.manifest()
    except UserError as exc:
        fail(503, f"the decoder is not available: {exc}")
    version = manifest["model_version"]
    decoders = {
        name: {**entry, "url": _file_url(version, entry)} for name, entry in manifest.get("decoders", {}).items()
    }
    preferred = decoders.get("fp32") or next(iter(decoders.values()), None)
    split = manifest.get("prefix")
    if split:
        split = {
            **split,
            **{part: {**split[part], "url": _file_url(version, split[part])} for part in ("prefix", "prompt")},
        }
    return jsonify(
        {
            **manifest,
            "model_id": svc.model.model_id,
            "decoders": decoders,
            **({"prefix": split} if split else {}),
            "decoder_url": preferred["url"] if preferred else None,
            "manifest_url": f"/models/{version}/manifest.json",
            "embedding_url": "/api/images/{id}/embedding",
            "embedding_transfer_dtype": "float16",
            "ort_url": f"/vendor/ort/v{ort_version(str(_web_dir()))}/{ORT_ENTRY}",
            "category_palette": list(CATEGORY_PALETTE),
            "tiling": tiling().to_json(),
            "rating_scale": {str(k): v for k, v in ratings.SCALE.items()},  # 1..10 mask ratings
        }
    )


def _file_url(version: str, entry: Mapping[str, Any]) -> str:
    """A decoder file's URL, immutable: its content hash rides along, so that a version's file
    exported again (a new export format) is fetched anew rather than taken from a browser's cache."""
    return f"/models/{version}/{entry['file']}?sha256={entry.get('sha256', '')[:16]}"


@bp.get("/models/<filename>")
def model_file(filename: str) -> Response:
    """The active version's ``manifest.json`` and decoder files, revalidated by ETag."""
    return _model_version_file(None, filename)


@bp.get("/models/<version>/<filename>")
def model_version_file(version: str, filename: str) -> Response:
    """A version's ``manifest.json`` and decoder files; a version never changes, so they are cached for good."""
    response = _model_version_file(version, filename)
    response.headers["Cache-Control"] = IMMUTABLE
    return response


def _model_version_file(version: str | None, filename: str) -> Response:
    """``manifest.json`` and the decoder files it lists; nothing else from that folder."""
    svc = services()
    try:
        manifest = svc.model.manifest(version)
    except UserError as exc:
        fail(404 if version else 503, f"the decoder is not available: {exc}")
    allowed = {"manifest.json"} | {entry["file"] for entry in manifest.get("decoders", {}).values()}
    split = manifest.get("prefix") or {}
    allowed |= {split[part]["file"] for part in ("prefix", "prompt") if part in split}
    if filename not in allowed:
        fail(404, f"not found: {filename} (this model version serves {', '.join(sorted(allowed))})")
    return _send(svc.model.version_onnx_dir(manifest["model_version"]), filename)


@bp.get("/api/health")
def health() -> Response:
    """``{"ok": true, "precompute": {"state", "done", "total", "error", "attempts"}}``: the
    embedding worker's state (``EmbeddingService.state``; ``off`` when it is not started)."""
    return jsonify({"ok": True, "precompute": services().embeddings.state()})
