"""The Flask application factory: config, database schema, services, one blueprint per resource.

Blueprints: ``images`` (catalogue, image files, embeddings, progress), ``annotations`` (categories
and masks), ``decode`` (the server's decoder for early clicks), ``export`` (COCO, YOLO-seg and VOC zips), ``proposals``
(semi-automatic stage, statistics), ``learning`` (training runs, model versions), ``static``
(page, onnxruntime-web, decoders, model manifest), ``work`` (leases), ``review``, ``pyramid`` (tiles of large images).
"""

import atexit
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from maskloop.server.settings import DEFAULTS, resolve_paths


def create_app(test_config: Mapping[str, Any] | None = None, start_work: bool = True) -> Flask:
    """Build the app: config, database schema, services, blueprints; scan the folder.

    With ``start_work`` (and ``PRECOMPUTE``) the background work starts at once
    (``start_background_work``); ``maskloop serve`` starts it after it listens instead, so that a
    new folder answers HTTP before the model is loaded.

    Raises:
      UserError: missing data folder, unusable work folder or database, bad checkpoint.
    """
    app = Flask("maskloop.server", static_folder=None)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("MASKLOOP")
    if test_config:
        app.config.from_mapping(test_config)
    resolve_paths(app.config)

    from maskloop.server.http import (
        annotations,
        auth,
        categories,
        cleanup,
        db,
        decode,
        export,
        images,
        json_api,
        learning,
        polygons,
        proposals,
        pyramid,
        ratings,
        review,
        security,
        static,
        work,
    )
    from maskloop.server.jobs.services import build_services

    db.init_app(app)
    json_api.init_app(app)
    security.init_app(app)
    auth.init_app(app)
    for module in (
        images,
        categories,
        annotations,
        cleanup,
        polygons,
        decode,
        export,
        proposals,
        learning,
        static,
        work,
        review,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(ratings.bp)
    pyramid.init_app(app)

    svc = build_services(app.config)
    app.extensions["maskloop"] = svc
    learning.init_app(app, svc)
    if app.config["SCAN_AT_START"]:
        svc.rescan(progress=not app.testing)
    if start_work:
        start_background_work(app)
    return app


def start_background_work(app: Flask) -> None:
    """With ``PRECOMPUTE``: gzip copies of onnxruntime-web (in the shared ``GZIP_DIR``, made once),
    the embedding worker, which embeds every image not yet cached (it loads the model first), and
    the tile pyramids of the large images (coarse levels of all first, then the full ones)."""
    if not app.config["PRECOMPUTE"]:
        return
    from maskloop.server.http import pyramid, static
    from maskloop.server.http.compress import prepare

    svc = app.extensions["maskloop"]
    prepare(static.ort_files(Path(app.config["WEB_DIR"])), Path(app.config["GZIP_DIR"]))
    svc.embeddings.start()
    atexit.register(svc.embeddings.stop, 5.0)
    pyramid.precut(app)
