"""Mask quality ratings (1 nonsense .. 10 pixel-perfect, the SAM paper's scale): one per person per
mask, a new one replacing theirs. Callers of the writes hold the transaction (``db.transaction``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maskloop.server.store.db import Connection, Row, now

#: The scale's ends.
LOWEST, HIGHEST = 1, 10
#: The scale's anchors, shown where people rate (the page's rating menu and keys).
SCALE = {
    1: "nonsense: not this object",
    3: "poor: the object, but large parts missing or added",
    5: "fair: large errors but the object is recognisable",
    7: "good: small errors along the boundary",
    9: "very good: errors hard to see",
    10: "pixel-perfect",
}
#: The rater of single-user mode (no accounts).
SINGLE_USER = ""


def set_rating(
    conn: Connection,
    annotation_id: int,
    rating: int,
    rater: str = SINGLE_USER,
    rater_id: int | None = None,
    rated: str | None = None,
) -> None:
    """Record ``rater``'s rating of the annotation (``LOWEST``..``HIGHEST``, checked by the caller),
    replacing theirs if they had one; ``rated`` defaults to now (UTC)."""
    conn.execute(
        "INSERT INTO rating (annotation_id, rater, rater_id, rating, rated) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (annotation_id, rater) DO UPDATE SET"
        " rating = excluded.rating, rater_id = excluded.rater_id, rated = excluded.rated",
        (annotation_id, rater, rater_id, rating, rated or now()),
    )


def ratings_of(conn: Connection, annotation_id: int) -> list[Row]:
    """The annotation's ratings: ``rater``, ``rater_id``, ``rating``, ``rated``, oldest first."""
    rows: list[Row] = conn.execute(
        "SELECT rater, rater_id, rating, rated FROM rating WHERE annotation_id = ? ORDER BY rated, id",
        (annotation_id,),
    ).fetchall()
    return rows


def ratings_by_annotation(conn: Connection) -> dict[int, list[dict[str, Any]]]:
    """Every rating, grouped by annotation id: ``{"rating", "rater" (None in single-user mode), "rated"}``."""
    out: dict[int, list[dict[str, Any]]] = {}
    for r in conn.execute("SELECT annotation_id, rater, rating, rated FROM rating ORDER BY annotation_id, rated, id"):
        out.setdefault(int(r[0]), []).append({"rating": int(r[2]), "rater": r[1] or None, "rated": r[3]})
    return out


def image_ratings(conn: Connection, image_id: int, rater: str) -> dict[int, dict[str, Any]]:
    """Per annotation of the image that has ratings: ``{"count", "mean", "mine"}``, ``mine`` being
    ``rater``'s rating (None if they gave none)."""
    out: dict[int, dict[str, Any]] = {}
    rows = conn.execute(
        "SELECT r.annotation_id, r.rater, r.rating FROM rating r JOIN annotation a ON a.id = r.annotation_id"
        " WHERE a.image_id = ?",
        (image_id,),
    ).fetchall()
    for annotation_id, who, rating in rows:
        entry = out.setdefault(int(annotation_id), {"count": 0, "mean": None, "mine": None, "sum": 0})
        entry["count"] += 1
        entry["sum"] += int(rating)
        if who == rater:
            entry["mine"] = int(rating)
    for entry in out.values():
        entry["mean"] = round(entry.pop("sum") / entry["count"], 2)
    return out


def rating_rows(conn: Connection) -> list[Sequence[Any]]:
    """Every rating of an accepted mask as ``(stage, model_version, rating)``."""
    rows: list[Sequence[Any]] = conn.execute(
        "SELECT a.stage, a.model_version, r.rating FROM rating r JOIN annotation a ON a.id = r.annotation_id"
        " WHERE a.status = 'accepted'"
    ).fetchall()
    return rows


def account_id(conn: Connection, name: str) -> int | None:
    """The id of the account called ``name``, or None when there is none."""
    row = conn.execute("SELECT id FROM account WHERE name = ?", (name,)).fetchone()
    return None if row is None else int(row[0])
