"""Writing to the annotation store from Python: what the API, ``import-coco`` and the data
engine's commands share. Callers hold the transaction (``db.transaction``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maskloop import masks
from maskloop.server.db import CATEGORY_PALETTE, Connection, now, open_database

STATUSES = ("proposed", "accepted", "rejected")
#: Columns a caller may set besides the mask; everything else is derived.
OPTIONAL_COLUMNS = (
    "stage",
    "status",
    "clicks",
    "seconds",
    "prompts",
    "predicted_iou",
    "stability_score",
    "model",
    "model_version",
    "author_id",
)


def mask_columns(rle: dict) -> dict[str, Any]:
    """The annotation columns that describe a mask: RLE counts and size, area and bbox (pycocotools)."""
    area, bbox = masks.measure(rle)
    return {
        "rle_counts": rle["counts"],
        "rle_height": rle["size"][0],
        "rle_width": rle["size"][1],
        "area": area,
        "bbox": json.dumps(bbox),
    }


def insert_annotation(conn: Connection, image_id: int, category_id: int, rle: dict, **columns: Any) -> int:
    """Store one mask; returns the new annotation id (ids start at 1).

    Arguments:
      rle: canonical compressed RLE of the whole image (``masks.canonical_rle`` /
        ``masks.encode``), ``size`` = [height, width] as shown.
      columns: any of ``OPTIONAL_COLUMNS``; ``prompts`` may be any JSON value (stored as text).
        Defaults: stage ``manual``, status ``accepted``.
    """
    unknown = set(columns) - set(OPTIONAL_COLUMNS)
    if unknown:
        raise TypeError(f"unknown annotation column(s): {', '.join(sorted(unknown))}")
    if "prompts" in columns and columns["prompts"] is not None and not isinstance(columns["prompts"], str):
        columns["prompts"] = json.dumps(columns["prompts"], separators=(",", ":"))
    stamp = now()
    values = {
        "image_id": image_id,
        "category_id": category_id,
        **mask_columns(rle),
        "created": stamp,
        "updated": stamp,
        **columns,
    }
    cur = conn.execute(
        f"INSERT INTO annotation ({', '.join(values)}) VALUES ({', '.join('?' * len(values))}) RETURNING id",
        tuple(values.values()),
    )
    return int(cur.fetchall()[0][0])  # fetch all: SQLite keeps the statement open until then


def next_color(conn: Connection) -> str:
    """The palette colour for the next new category."""
    return CATEGORY_PALETTE[conn.execute("SELECT count(*) FROM category").fetchone()[0] % len(CATEGORY_PALETTE)]


def ensure_category(conn: Connection, name: str, color: str | None = None, supercategory: str | None = None) -> int:
    """The id of the category called ``name``, created (with the next palette colour) if new."""
    row = conn.execute("SELECT id FROM category WHERE name=?", (name,)).fetchone()
    if row is not None:
        return int(row["id"])
    if color is None:
        color = next_color(conn)
    stamp = now()
    cur = conn.execute(
        "INSERT INTO category (name, color, supercategory, created, updated) VALUES (?, ?, ?, ?, ?) RETURNING id",
        (name, color, supercategory, stamp, stamp),
    )
    return int(cur.fetchall()[0][0])  # fetch all: SQLite keeps the statement open until then


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
    from maskloop.server import DEFAULTS, resolve_paths
    from maskloop.server.catalog import scan as scan_folder

    config = dict(DEFAULTS)
    config.update({k[len("MASKLOOP_") :]: v for k, v in _env_config().items()})
    config.update({k: v for k, v in {"DATA_DIR": data, "WORKDIR": workdir, "DATABASE": db}.items() if v is not None})
    resolve_paths(config)
    conn = open_database(config["DATABASE"])
    if scan:
        from maskloop.server.catalog import DEFAULT_MAX_PIXELS

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
