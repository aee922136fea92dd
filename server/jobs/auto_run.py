"""The fully automatic stage's bookkeeping across runs: which images a model version finished
(resume), and the masks earlier runs of other versions left in the store.

A run killed at any point and started again stores every image's masks once: each image's masks
are committed in one transaction, an image with masks of the active version in the store counts
as done even when ``auto-done.json`` missed it, and an image run again anyway drops masks that
duplicate accepted ones (``proposals.store_generated``).
"""

from __future__ import annotations

import json
from pathlib import Path

from maskloop.server.store import dataset
from maskloop.server.store.db import Connection, transaction


class AutoDone:
    """The images ``auto`` has finished, as ``<model_id>@<version>:<sha256>`` in WORKDIR/auto-done.json
    (rewritten atomically): a resume skips only what the same model version annotated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: set[str] = set(json.loads(path.read_text())) if path.is_file() else set()

    @staticmethod
    def key(model_id: str, version: str, sha256: str) -> str:
        return f"{model_id}@{version}:{sha256}"

    def add(self, key: str) -> None:
        self.keys.add(key)
        self._write()

    def add_stored(self, conn: Connection, model_id: str, version: str) -> int:
        """Record the images whose masks of this version are in the store but not here (a run
        killed between an image's commit and this file's rewrite); returns how many."""
        missing = {self.key(model_id, version, sha) for sha in dataset.images_with_auto_masks(conn, model_id, version)}
        missing -= self.keys
        if missing:
            self.keys |= missing
            self._write()
        return len(missing)

    def clear(self) -> None:
        self.keys.clear()
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(self.keys)))
        tmp.replace(self.path)  # not fsynced: the store is the truth, ``add_stored`` mends a lost rewrite


def other_version_masks(conn: Connection, model_id: str, version: str) -> dict[str, int]:
    """Automatic masks in the store made by another model or model version: ``{"<model>@<version>": count}``."""
    return dataset.auto_masks_of_other_versions(conn, model_id, version)


def restart_auto(conn: Connection, done: AutoDone) -> int:
    """Forget every earlier ``auto`` run: delete the stage's masks and the resume record; returns the masks deleted."""
    with transaction(conn):
        deleted = dataset.delete_stage_masks(conn, "auto")
    done.clear()
    return deleted
