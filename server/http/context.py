"""The current app's long-lived services (catalogue, model, embeddings, exports)."""

from __future__ import annotations

from flask import current_app

from maskloop.server.jobs.services import Services


def services() -> Services:
    """The current app's services (inside a request or app context)."""
    svc: Services = current_app.extensions["maskloop"]
    return svc
