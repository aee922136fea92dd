"""The project's clean-up defaults (issue 23): what the page's clean-up keys use.

  ``GET /api/settings/cleanup``  ``{"min_hole_px": N, "min_island_px": N, "on_accept": bool}``
  ``PUT /api/settings/cleanup``  any of those fields; answers the whole setting (admin with accounts)

``min_hole_px``: O fills holes smaller than this (pixels, full resolution); ``min_island_px``: I
drops separate parts smaller than this; ``on_accept``: Enter applies both before saving. Kept in
the project's work folder (``cleanup.json``), beside its store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from maskloop import validate
from maskloop.engine.versions import write_json_atomic
from maskloop.server.http.json_api import fail, json_body

bp = Blueprint("cleanup", __name__, url_prefix="/api")

DEFAULTS: dict[str, Any] = {"min_hole_px": 100, "min_island_px": 100, "on_accept": False}
MAX_PX = 100_000_000  # more than any image's pixels
FILE = "cleanup.json"


def _path() -> Path:
    return Path(current_app.config["WORKDIR"]) / FILE


def load() -> dict[str, Any]:
    """The stored setting over the defaults (a missing or unreadable file: the defaults)."""
    try:
        stored = json.loads(_path().read_text())
    except (OSError, ValueError):
        stored = {}
    setting = dict(DEFAULTS)
    if isinstance(stored, dict):
        setting.update({k: v for k, v in stored.items() if k in DEFAULTS and _valid(k, v)})
    return setting


def _valid(key: str, value: object) -> bool:
    if key == "on_accept":
        return isinstance(value, bool)
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PX


@bp.get("/settings/cleanup")
def get_cleanup() -> Response:
    return jsonify(load())


@bp.put("/settings/cleanup")
def set_cleanup() -> Response:
    body = json_body()
    unknown = sorted(set(body) - set(DEFAULTS))
    if unknown:
        fail(400, f"unknown clean-up setting {validate.brief(unknown[0])}: use {', '.join(DEFAULTS)}")
    for key, value in body.items():
        if not _valid(key, value):
            fail(
                400, f"{key} must be {'true or false' if key == 'on_accept' else f'a whole number from 0 to {MAX_PX}'}"
            )
    setting = {**load(), **body}
    write_json_atomic(_path(), setting)
    return jsonify(setting)
