"""Training from the store: the accepted masks a run learns from, and the server's background training
job (at most one run at a time; ``engine/learn.py`` trains, gates and stores the version)."""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

from maskloop.engine.learn import TRAINABLE_STAGES, AnnotatedImage, annotated_images
from maskloop.errors import UserError
from maskloop.server.jobs.services import Services
from maskloop.server.store import dataset
from maskloop.server.store.annotations import count_accepted
from maskloop.server.store.db import Connection


def training_images(conn: Connection) -> list[AnnotatedImage]:
    """Images with at least one trainable accepted mask (``TRAINABLE_STAGES``), by image id."""
    rows = dataset.trainable_mask_rows(conn, TRAINABLE_STAGES)
    return annotated_images(rows)  # type: ignore[arg-type]  # sqlite3.Row is no Mapping in typeshed; annotated_images only reads row["column"]


def photo_sets(model: Any) -> dict[str, Any]:
    """``learn``'s ``generic_set`` and ``replay_set`` for a ``ModelService`` (``engine.checkset``):
    maskloop's own photos, embedded by the service (one batch at a time, under its lock) and
    cached per checkpoint in the user's cache folder."""
    from maskloop.engine.checkset import generic_set, replay_set
    from maskloop.paths import cache_dir

    def embed(image: Any) -> Any:
        return model.embed([image])

    sha = model.checkpoint_sha256
    return {"generic_set": generic_set(embed, sha, cache_dir()), "replay_set": replay_set(embed, sha, cache_dir())}


def trainable_mask_count(conn: Any) -> int:
    """Accepted masks a training run would use (see ``engine.learn.TRAINABLE_STAGES``)."""
    return count_accepted(conn, TRAINABLE_STAGES)


class TrainingJob:
    """At most one background training run per server; its progress as a JSON-ready dict."""

    def __init__(
        self, svc: Services, database: str, retrain_every: int | None, default_steps: int | None = None
    ) -> None:
        self.svc = svc
        self.database = database
        self.retrain_every = retrain_every
        self.default_steps = default_steps
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._state: dict[str, Any] = {"state": "idle"}
        self._masks_at_last_start: int | None = None

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._state)

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> dict:
        """Wait for the current run (if any) to end; returns the job's state."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.snapshot()

    def start(self, settings: Any, reason: str = "requested") -> dict:
        """Start a run with ``engine.learn.LearnSettings``; raises UserError if one is running."""
        from maskloop.server.store.db import open_database

        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise UserError("a training run is already in progress: watch GET /api/train")
            conn = open_database(self.database)
            try:
                self._masks_at_last_start = trainable_mask_count(conn)
            finally:
                conn.close()
            self._state = {"state": "running", "phase": "starting", "reason": reason, "started": time.time()}
            self._thread = threading.Thread(target=self._run, args=(settings,), name="maskloop-training", daemon=True)
            self._thread.start()
            return dict(self._state)

    def _update(self, event: dict) -> None:
        with self._lock:
            self._state.update(event)

    def _run(self, settings: Any) -> None:
        from maskloop.engine.learn import learn
        from maskloop.server.jobs.proposals import embedding_from_npy
        from maskloop.server.store.db import open_database

        model = self.svc.model
        data_dir = self.svc.catalog.data_dir
        conn = open_database(self.database)
        try:
            report = learn(
                lambda: training_images(conn),
                model.embedder().model,
                model_type=model.model_type,
                base_sha256=model.checkpoint_sha256,
                versions=model.versions,
                settings=settings,
                progress=self._update,
                embedding_of=lambda im: embedding_from_npy(
                    self.svc.embeddings.get(im.sha256, data_dir / im.file_name, im.image_id)
                ),
                **photo_sets(model),
            )
            self._update({"state": "done", "phase": "done", "report": report, "finished": time.time()})
        except UserError as exc:
            self._update({"state": "failed", "error": str(exc), "finished": time.time()})
        except Exception as exc:  # the server goes on; the job says what happened
            traceback.print_exc()
            self._update(
                {"state": "failed", "error": f"training failed: {type(exc).__name__}: {exc}", "finished": time.time()}
            )
        finally:
            conn.close()

    def note_accepted(self, conn: Any) -> None:
        """After a mask was accepted: start a run if ``retrain_every`` new masks came since the last one."""
        if not self.retrain_every or self.running():
            return
        count = trainable_mask_count(conn)
        if self._masks_at_last_start is None:
            self._masks_at_last_start = self._masks_at_version(count)
        if count - self._masks_at_last_start >= self.retrain_every:
            try:
                self.start(self.default_settings(), reason=f"{count - self._masks_at_last_start} new accepted masks")
            except UserError:  # another process is training this project: try again after the next mask
                pass

    def default_settings(self) -> Any:
        """``LearnSettings`` of a run that names none (``TRAIN_STEPS`` steps when configured)."""
        from maskloop.engine.learn import LearnSettings
        from maskloop.engine.train import TrainSettings

        train = TrainSettings() if self.default_steps is None else TrainSettings(steps=self.default_steps)
        return LearnSettings(train=train)

    def _masks_at_version(self, count_now: int) -> int:
        """Masks the newest version was trained and checked on (0 without versions)."""
        names = self.svc.model.versions.names()
        if not names:
            return 0
        info = self.svc.model.versions.info(names[-1])
        return min(count_now, int(info["train"]["masks"]) + int(info["holdout"]["masks"]))
