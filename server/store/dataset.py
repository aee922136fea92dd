"""The whole data set at once, as COCO export and import read it: images, categories, masks with people."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maskloop.server.store.db import Connection, Row


def annotations_with_people(conn: Connection, statuses: Sequence[str], review: str | None) -> list[Row]:
    """Annotations with ``statuses`` (and review state ``review``: None any, ``unreviewed``, or a
    decision), by id, each with its ``author``, ``reviewer`` and ``editor`` names."""
    marks = ", ".join("?" * len(statuses))
    review_filter = {None: "", "unreviewed": " AND a.review IS NULL"}.get(review, " AND a.review = ?")
    rows: list[Row] = conn.execute(
        "SELECT a.*, au.name AS author, rv.name AS reviewer, ed.name AS editor FROM annotation a"
        " LEFT JOIN account au ON au.id = a.author_id LEFT JOIN account rv ON rv.id = a.reviewer_id"
        " LEFT JOIN account ed ON ed.id = a.editor_id"
        f" WHERE a.status IN ({marks}){review_filter} ORDER BY a.id",
        (*statuses, *([review] if review_filter.endswith("?") else [])),
    ).fetchall()
    return rows


def image_sizes(conn: Connection) -> list[Row]:
    """Every image row by id: ``id, file_name, width, height, missing, error``."""
    rows: list[Row] = conn.execute(
        "SELECT id, file_name, width, height, missing, error FROM image ORDER BY id"
    ).fetchall()
    return rows


def present_images(conn: Connection) -> list[Row]:
    """Every image row whose file is still in the folder."""
    rows: list[Row] = conn.execute("SELECT * FROM image WHERE missing = 0").fetchall()
    return rows


def categories(conn: Connection) -> list[Row]:
    """Every category row by id."""
    rows: list[Row] = conn.execute("SELECT * FROM category ORDER BY id").fetchall()
    return rows


def holds_mask(conn: Connection, image_id: int, category_id: int, rle: dict[str, Any]) -> bool:
    """Whether the store holds this mask (canonical RLE) on this image with this category, any status."""
    row = conn.execute(
        "SELECT 1 FROM annotation WHERE image_id = ? AND category_id = ? AND rle_counts = ? "
        "AND rle_height = ? AND rle_width = ? LIMIT 1",
        (image_id, category_id, rle["counts"], rle["size"][0], rle["size"][1]),
    ).fetchone()
    return row is not None


def mask_rles(conn: Connection, image_id: int, statuses: Sequence[str]) -> list[dict[str, Any]]:
    """Compressed RLEs (counts as bytes, pycocotools' form) of the image's annotations with ``statuses``."""
    marks = ", ".join("?" * len(statuses))
    rows = conn.execute(
        f"SELECT rle_counts, rle_height, rle_width FROM annotation WHERE image_id=? AND status IN ({marks})",
        (image_id, *statuses),
    ).fetchall()
    return [{"size": [r[1], r[2]], "counts": r[0].encode()} for r in rows]


def trainable_mask_rows(conn: Connection, stages: Sequence[str]) -> list[Row]:
    """Accepted masks of ``stages`` with their image's ``file_name, sha256, error, missing``, by image then id."""
    marks = ", ".join("?" * len(stages))
    rows: list[Row] = conn.execute(
        f"""SELECT a.id, a.image_id, a.rle_counts, a.rle_height, a.rle_width, i.file_name, i.sha256, i.error, i.missing
            FROM annotation a JOIN image i ON i.id = a.image_id
            WHERE a.status = 'accepted' AND a.stage IN ({marks})
            ORDER BY a.image_id, a.id""",
        tuple(stages),
    ).fetchall()
    return rows


def auto_masks_of_other_versions(conn: Connection, model_id: str, version: str) -> dict[str, int]:
    """Automatic masks made by another model or model version: ``{"<model>@<version>": count}``."""
    rows = conn.execute(
        "SELECT model, model_version, count(*) FROM annotation WHERE stage = 'auto' "
        "AND NOT (COALESCE(model, '') = ? AND COALESCE(model_version, '') = ?) "
        "GROUP BY model, model_version ORDER BY model, model_version",
        (model_id, version),
    ).fetchall()
    return {f"{r[0]}@{r[1]}": int(r[2]) for r in rows}


def images_with_auto_masks(conn: Connection, model_id: str, version: str) -> set[str]:
    """sha256 of the images holding automatic masks of this model version (an image's masks are
    stored in one transaction, so these images are finished even if a run died right after)."""
    rows = conn.execute(
        "SELECT DISTINCT image.sha256 FROM annotation JOIN image ON image.id = annotation.image_id "
        "WHERE annotation.stage = 'auto' AND COALESCE(annotation.model, '') = ? "
        "AND COALESCE(annotation.model_version, '') = ?",
        (model_id, version),
    ).fetchall()
    return {str(r[0]) for r in rows}


def delete_stage_masks(conn: Connection, stage: str) -> int:
    """Inside a transaction: delete every mask of a data-engine ``stage``; returns how many there were."""
    deleted = int(conn.execute("SELECT count(*) FROM annotation WHERE stage = ?", (stage,)).fetchone()[0])
    conn.execute("DELETE FROM annotation WHERE stage = ?", (stage,))
    return deleted
