"""A project folder opened outside the web server (the commands): resolved config, store, scan."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maskloop.server.jobs.catalog import DEFAULT_MAX_PIXELS
from maskloop.server.jobs.catalog import scan as scan_folder
from maskloop.server.settings import DEFAULTS, resolve_paths
from maskloop.server.store.db import Connection, open_database


@dataclass
class Store:
    """An opened store outside the web server: resolved config, connection, data folder."""

    config: dict[str, Any]
    conn: Connection

    @property
    def data_dir(self) -> Path:
        return Path(self.config["DATA_DIR"])

    def close(self) -> None:
        self.conn.close()


def open_store(
    data: str | Path | None = None,
    workdir: str | Path | None = None,
    scan: bool = True,
    progress: bool = True,
    db: str | None = None,
) -> Store:
    """Open a folder's store as ``maskloop serve`` would (same defaults, ``MASKLOOP_*`` environment),
    without loading the model; ``scan`` brings the image table up to date first; ``db`` names
    the database (``db.connect`` target) instead of the work folder's SQLite file.

    Raises:
      UserError: missing data folder, unusable work folder or database.
    """
    config = dict(DEFAULTS)
    config.update({k[len("MASKLOOP_") :]: v for k, v in _env_config().items()})
    config.update({k: v for k, v in {"DATA_DIR": data, "WORKDIR": workdir, "DATABASE": db}.items() if v is not None})
    resolve_paths(config)
    conn = open_database(config["DATABASE"])
    if scan:
        scan_folder(
            conn,
            Path(config["DATA_DIR"]),
            exclude=Path(config["WORKDIR"]),
            progress=progress,
            max_pixels=int(config["MAX_IMAGE_PIXELS"] or DEFAULT_MAX_PIXELS),
        )
    return Store(config, conn)


def _env_config() -> dict[str, Any]:
    """``MASKLOOP_*`` variables parsed as Flask's ``from_prefixed_env`` does (JSON when it parses)."""
    import os

    out: dict[str, Any] = {}
    for key, value in os.environ.items():
        if key.startswith("MASKLOOP_"):
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
    return out
