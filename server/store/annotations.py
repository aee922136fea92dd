"""Annotations (masks) in the store: what the API, ``import-coco`` and the data engine's commands
share. Callers of the writes hold the transaction (``db.transaction``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from maskloop import masks
from maskloop.server.store.db import Connection, Row, now

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
#: Annotations with the names of their author, reviewer and last editor (accounts).
_WITH_NAMES = (
    "SELECT a.*, au.name AS author, rv.name AS reviewer, ed.name AS editor FROM annotation a"
    " LEFT JOIN account au ON au.id = a.author_id LEFT JOIN account rv ON rv.id = a.reviewer_id"
    " LEFT JOIN account ed ON ed.id = a.editor_id"
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


def get_annotation(conn: Connection, annotation_id: int) -> Row | None:
    """The annotation with its ``author`` and ``reviewer`` names, or None when there is none."""
    row: Row | None = conn.execute(f"{_WITH_NAMES} WHERE a.id=?", (annotation_id,)).fetchone()
    return row


def list_annotations(conn: Connection, image_id: int, status: str | None = None) -> list[Row]:
    """The image's annotations (only those with ``status`` when given) with author and reviewer names, by id."""
    query = f"{_WITH_NAMES} WHERE a.image_id=?" + (" AND a.status=?" if status else "") + " ORDER BY a.id"
    return conn.execute(query, (image_id, status) if status else (image_id,)).fetchall()


def update_annotation(conn: Connection, annotation_id: int, columns: dict[str, Any]) -> None:
    """Sets the annotation's ``columns`` (names checked by the caller: mask, category, status, ...)."""
    conn.execute(
        f"UPDATE annotation SET {', '.join(f'{k}=?' for k in columns)} WHERE id=?",
        (*columns.values(), annotation_id),
    )


def delete_annotation(conn: Connection, annotation_id: int) -> None:
    """Deletes the annotation."""
    conn.execute("DELETE FROM annotation WHERE id=?", (annotation_id,))


def count_accepted(conn: Connection, stages: Sequence[str]) -> int:
    """The number of accepted masks made in one of ``stages`` (e.g. the ones training uses)."""
    marks = ", ".join("?" * len(stages))
    return int(
        conn.execute(
            f"SELECT count(*) FROM annotation WHERE status='accepted' AND stage IN ({marks})", tuple(stages)
        ).fetchone()[0]
    )
