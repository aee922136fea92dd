"""Training from the store: the accepted masks a run learns from (``engine/learn.py`` does the rest)."""

from __future__ import annotations

from maskloop.engine.learn import TRAINABLE_STAGES, AnnotatedImage, annotated_images
from maskloop.server.store import dataset
from maskloop.server.store.db import Connection


def training_images(conn: Connection) -> list[AnnotatedImage]:
    """Images with at least one trainable accepted mask (``TRAINABLE_STAGES``), by image id."""
    rows = dataset.trainable_mask_rows(conn, TRAINABLE_STAGES)
    return annotated_images(rows)  # type: ignore[arg-type]  # sqlite3.Row is no Mapping in typeshed; annotated_images only reads row["column"]
