"""Training from the store: the accepted masks a run learns from, and the server's background training
job (at most one run at a time; ``engine/learn.py`` trains, gates and stores the version)."""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from maskloop.errors import UserError
from maskloop.server.jobs import training_record
from maskloop.server.jobs.services import Services
from maskloop.server.store import dataset
from maskloop.server.store.annotations import count_accepted
from maskloop.server.store.db import Connection

if TYPE_CHECKING:  # engine.learn imports torch (1.5 s here): not at server start, only for a run
    from maskloop.engine.learn import AnnotatedImage


def training_images(conn: Connection) -> list[AnnotatedImage]:
    """Images with at least one trainable accepted mask (``TRAINABLE_STAGES``), by image id."""
    from maskloop.engine.learn import TRAINABLE_STAGES, annotated_images

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


def decision(report: dict[str, Any], note: str = "") -> dict[str, Any]:
    """A run's outcome from its ``version.json``: ``version``, ``activated``, ``verdict`` (the gate's:
    activated, forced or refused; without a held-out check: forced) and the one-line ``reason``."""
    gate = report.get("gate") or {}
    verdict = gate.get("verdict") or ("forced" if report["activated"] else "refused")
    return {
        "version": report["version"],
        "activated": report["activated"],
        "verdict": verdict,
        "reason": report["reason"] + note,
    }


def settings_summary(settings: Any) -> dict[str, Any]:
    """What a run was started with (``LearnSettings``), as the job's state shows it."""
    length = {"minutes": settings.minutes} if settings.minutes is not None else {"steps": settings.train.steps}
    return {
        **length,
        "seed": settings.train.seed,
        "holdout": settings.holdout,
        "eval_clicks": settings.eval_clicks,
        "force": settings.force,
    }


def trainable_mask_count(conn: Any) -> int:
    """Accepted masks a training run would use (see ``engine.learn.TRAINABLE_STAGES``)."""
    from maskloop.engine.learn import TRAINABLE_STAGES

    return count_accepted(conn, TRAINABLE_STAGES)


class TrainingJob:
    """At most one background training run per server; its progress as a JSON-ready dict.

    The state (``snapshot``): ``state`` (idle, running, done, failed, cancelled), ``phase``,
    ``reason`` (why it started), ``started``/``finished`` (Unix seconds), the training events of
    ``engine.learn.learn`` (``step``, ``steps``, ``loss``, ``eta_s``, ``elapsed_s``, ``best``), while
    running ``cancel_requested`` once asked, and at the end ``decision`` (``version``, ``activated``,
    ``verdict``: activated, forced or refused, and the gate's one-line ``reason``) with ``report``
    (the version's ``version.json``), or ``error``. It is kept in the models folder at a run's start
    and end (``training_record``), so a restarted server reports an interrupted run as failed.
    """

    def __init__(
        self, svc: Services, database: str, retrain_every: int | None, default_steps: int | None = None
    ) -> None:
        self.svc = svc
        self.database = database
        self.default_steps = default_steps
        self.root = svc.model.versions.root
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._state: dict[str, Any] = {"state": "idle"}
        self._newest_at_start: str | None = None
        self._masks_at_last_start: int | None = None
        stored = training_record.load_job(self.root)
        if stored is not None:
            self._state = training_record.after_restart(stored, svc.model.versions.names())
            if self._state is not stored:
                training_record.save_job(self.root, self._state)
        found, every = training_record.load_cadence(self.root)
        self.retrain_every = every
        if retrain_every is not None and (not found or every != retrain_every):  # the command line wins
            self.set_retrain_every(retrain_every)

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._state)

    def running(self) -> bool:
        """Whether a run is in progress: its state, not its thread, which lives on for a moment
        after the run's end is recorded (closing its database connection)."""
        with self._lock:
            return self._in_progress()

    def _in_progress(self) -> bool:
        return self._state.get("state") == "running" and self._thread is not None

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
            if self._in_progress():
                raise UserError("a training run is already in progress: watch GET /api/train")
            conn = open_database(self.database)
            try:
                self._masks_at_last_start = trainable_mask_count(conn)
            finally:
                conn.close()
            self._cancel.clear()
            names = self.svc.model.versions.names()
            self._newest_at_start = names[-1] if names else None
            self._state = {
                "state": "running",
                "phase": "starting",
                "reason": reason,
                "started": time.time(),
                "settings": settings_summary(settings),
                "cancel": "POST /api/train/cancel",
            }
            self._persist()
            self._thread = threading.Thread(target=self._run, args=(settings,), name="maskloop-training", daemon=True)
            self._thread.start()
            return dict(self._state)

    def cancel(self, wait_s: float = 0.0) -> dict:
        """Ask the running run to stop (it stops at its next step or evaluated image and writes
        nothing); waits up to ``wait_s`` seconds for it. Raises UserError when none runs."""
        with self._lock:
            thread = self._thread
            if thread is None or not self._in_progress():
                raise UserError("no training run in progress: nothing to cancel")
            self._cancel.set()
            self._state["cancel_requested"] = True
        thread.join(wait_s)
        return self.snapshot()

    def set_retrain_every(self, every: int | None) -> None:
        """A run after every ``every`` newly accepted masks from now on (None: off); kept in the models folder."""
        training_record.save_cadence(self.root, every)
        self.retrain_every = every

    def _update(self, event: dict) -> None:
        with self._lock:
            if "phase" in event and "message" not in event:
                self._state.pop("message", None)  # the last phase's line
            self._state.update(event)

    def _finish(self, event: dict) -> None:
        """The run's end: its final state, kept on disk."""
        with self._lock:
            self._state.pop("cancel_requested", None)
            self._state.pop("message", None)
            self._state.update(event, finished=time.time())
            self._persist()

    def _persist(self) -> None:
        """Keep the state (call with the lock held); a disk error is printed, the run goes on."""
        try:
            training_record.save_job(self.root, {**self._state, "newest_version": self._newest_at_start})
        except OSError as exc:
            print(f"maskloop: could not keep the training job's state in {self.root}: {exc}", file=sys.stderr)

    def _run(self, settings: Any) -> None:
        from maskloop.engine.learn import TrainingCancelled, learn
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
                should_stop=self._cancel.is_set,
                embedding_of=lambda im: embedding_from_npy(
                    self.svc.embeddings.get(im.sha256, data_dir / im.file_name, im.image_id)
                ),
                **photo_sets(model),
            )
            late = " (the cancel came while the version was being written)" if self._cancel.is_set() else ""
            self._finish({"state": "done", "phase": "done", "decision": decision(report, late), "report": report})
        except TrainingCancelled as exc:
            self._finish({"state": "cancelled", "phase": "cancelled", "error": str(exc)})
        except UserError as exc:
            self._finish({"state": "failed", "phase": "failed", "error": str(exc)})
        except Exception as exc:  # the server goes on; the job says what happened
            traceback.print_exc()
            self._finish(
                {"state": "failed", "phase": "failed", "error": f"training failed: {type(exc).__name__}: {exc}"}
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
