"""What the data engine's statistics read: per-mask stage, time and clicks; per-account work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from maskloop.server.store.db import Connection


def stage_rows(conn: Connection) -> list[Sequence[Any]]:
    """Every annotation's ``(image_id, stage, status, clicks, seconds)``."""
    rows: list[Sequence[Any]] = conn.execute(
        "SELECT image_id, stage, status, clicks, seconds FROM annotation"
    ).fetchall()
    return rows


def version_usage_rows(conn: Connection) -> list[Sequence[Any]]:
    """Accepted manual and semi-automatic masks' ``(model_version, clicks, seconds, hand_edited)``;
    ``hand_edited`` is 1 when the page stored hand edits (brush / eraser strokes, clean-ups) with the prompts."""
    rows: list[Sequence[Any]] = conn.execute(
        "SELECT model_version, clicks, seconds,"
        " CASE WHEN prompts LIKE '%\"edits\":[{%' THEN 1 ELSE 0 END AS hand_edited"
        " FROM annotation WHERE status = 'accepted' AND stage IN ('manual', 'semi')"
    ).fetchall()
    return rows


@dataclass
class PeopleRows:
    """What per-account statistics read (see ``engine.stats.people_statistics``)."""

    names: dict[int, str]
    masks: list[Sequence[Any]]
    finished: dict[int, int]
    log: list[Sequence[Any]]


def people_rows(conn: Connection) -> PeopleRows:
    """Account names, accepted masks by author, images finished per account, and the review log."""
    names = {int(r[0]): str(r[1]) for r in conn.execute("SELECT id, name FROM account").fetchall()}
    masks = conn.execute(
        "SELECT author_id, clicks, seconds FROM annotation WHERE status = 'accepted' AND author_id IS NOT NULL"
    ).fetchall()
    finished = {
        int(r[0]): int(r[1])
        for r in conn.execute(
            "SELECT done_by, count(*) FROM image WHERE done = 1 AND done_by IS NOT NULL GROUP BY done_by"
        ).fetchall()
    }
    log = conn.execute("SELECT reviewer_id, annotator_id, decision, masks FROM review_log").fetchall()
    return PeopleRows(names, masks, finished, log)
