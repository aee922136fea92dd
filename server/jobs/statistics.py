"""The data engine's statistics over a store: per stage, per model version, per person
(``engine/stats.py`` computes them from what ``store/stats.py`` reads)."""

from __future__ import annotations

from typing import Any

from maskloop.engine import stats
from maskloop.engine.versions import ModelVersions
from maskloop.server.store import ratings
from maskloop.server.store import stats as rows
from maskloop.server.store.db import Connection


def stage_statistics(conn: Connection) -> dict[str, Any]:
    """``{"stages": {stage: {...}}, "total": {...}}`` (see ``engine.stats.stage_statistics``)."""
    return stats.stage_statistics(rows.stage_rows(conn))


def version_statistics(conn: Connection, versions: ModelVersions) -> list[dict[str, Any]]:
    """Per model version, ``base`` first: held-out metrics and how people fared with it."""
    return stats.version_statistics(rows.version_usage_rows(conn), versions)


def people_statistics(conn: Connection) -> dict[str, Any]:
    """``{"annotators": [...], "reviewers": [...]}`` (see ``engine.stats.people_statistics``)."""
    people = rows.people_rows(conn)
    return stats.people_statistics(people.names, people.masks, people.finished, people.log)


def rating_statistics(conn: Connection) -> dict[str, Any]:
    """Mask ratings per stage and per model version (see ``engine.stats.rating_statistics``)."""
    return stats.rating_statistics(ratings.rating_rows(conn))
