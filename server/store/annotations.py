"""Writing to the annotation store from Python: what the API, ``import-coco`` and the data
engine's commands share. Callers hold the transaction (``db.transaction``)."""

from __future__ import annotations

import json
from typing import Any

from maskloop import masks
from maskloop.server.store.db import Connection, now

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
