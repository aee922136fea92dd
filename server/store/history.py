"""Mask history: who created, changed and deleted which mask, when (``annotation_history``).

Append-only: the API records one row per create, change and delete of a mask in the same
transaction as the write itself, so the trace and the mask never disagree. A row holds the mask
as the action left it (a delete: as it was), so a deleted mask stays visible to reviewers and
admins. ``actor`` keeps the account's name as it was then: a removed account's name may be given
to a new account, which does not inherit the old one's history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from maskloop.server.store.db import Connection, Row, now

ACTIONS = ("create", "change", "delete")


def record(
    conn: Connection,
    mask: Row,
    action: str,
    actor_id: int | None,
    actor: str | None,
    changed: Iterable[str] = (),
) -> None:
    """Record ``action`` on annotation row ``mask`` (as it is after a create or change, before a delete)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown history action {action!r}")
    fields = sorted(set(changed) - {"updated"})
    conn.execute(
        "INSERT INTO annotation_history (annotation_id, image_id, action, actor_id, actor, at, changed,"
        " category_id, status, rle_counts, rle_height, rle_width, area, author_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            mask["id"],
            mask["image_id"],
            action,
            actor_id,
            actor,
            now(),
            json.dumps(fields) if fields else None,
            mask["category_id"],
            mask["status"],
            mask["rle_counts"],
            mask["rle_height"],
            mask["rle_width"],
            mask["area"],
            mask["author_id"],
        ),
    )


def image_history(conn: Connection, image_id: int) -> list[dict[str, Any]]:
    """Every recorded action on the image's masks, oldest first (masks as ``segmentation`` RLE)."""
    rows = conn.execute(
        "SELECT h.*, au.name AS author FROM annotation_history h LEFT JOIN account au ON au.id = h.author_id"
        " WHERE h.image_id = ? ORDER BY h.id",
        (image_id,),
    ).fetchall()
    return [history_json(r) for r in rows]


def deleted_masks(conn: Connection, image_id: int) -> list[dict[str, Any]]:
    """The image's deleted masks as they were, with who deleted them and when, newest first."""
    rows = conn.execute(
        "SELECT h.*, au.name AS author FROM annotation_history h LEFT JOIN account au ON au.id = h.author_id"
        " WHERE h.image_id = ? AND h.action = 'delete' ORDER BY h.id DESC",
        (image_id,),
    ).fetchall()
    return [history_json(r) for r in rows]


def history_json(row: Row) -> dict[str, Any]:
    return {
        "annotation_id": row["annotation_id"],
        "image_id": row["image_id"],
        "action": row["action"],
        "actor_id": row["actor_id"],
        "actor": row["actor"],
        "at": row["at"],
        "changed": json.loads(row["changed"]) if row["changed"] else [],
        "category_id": row["category_id"],
        "status": row["status"],
        "segmentation": {"size": [row["rle_height"], row["rle_width"]], "counts": row["rle_counts"]},
        "area": row["area"],
        "author_id": row["author_id"],
        "author": row["author"],
    }
