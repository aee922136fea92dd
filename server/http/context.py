"""The current app's long-lived services (catalogue, model, embeddings, exports)."""

from __future__ import annotations

from flask import current_app

from maskloop.server.jobs.services import Services
from maskloop.tiles import Tiling


def services() -> Services:
    """The current app's services (inside a request or app context)."""
    svc: Services = current_app.extensions["maskloop"]
    return svc


def tiling() -> Tiling:
    """How the model tiles large images (tile = its image encoder's input size; ``TILE_THRESHOLD`` of the config).

    The input size is the base model's: a trained version changes only the mask decoder.
    """
    from maskloop.engine.versions import BASE

    threshold = current_app.config.get("TILE_THRESHOLD")
    input_size = int(services().model.manifest(BASE)["input_size"])
    return Tiling.for_model(input_size, int(threshold) if threshold else None)
