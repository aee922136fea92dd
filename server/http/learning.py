"""The data engine's loop in the server: training runs in the background, model versions, switching.

Routes:
  ``POST /api/train``  start a training run (body, all optional: ``steps`` or ``minutes``, ``seed``,
                       ``holdout``, ``eval_clicks``, ``force``) -> 202 with the job's state; 409 while one runs.
  ``GET /api/train``   the job: ``state`` (idle, running, done, failed), ``phase``, ``step``/``steps``,
                       ``loss``, ``eta_s``, and when finished ``report`` (the version's ``version.json``) or ``error``.
  ``GET /api/models``  every version with its held-out metrics and per-version usage (``engine.stats``).
  ``GET /api/models/active``   ``{"version", "model_id"}``: what the page polls to hot-swap its decoder.
  ``POST /api/models/active``  ``{"version": "v0002" | "base"}``: switch (rollback included).

``RETRAIN_EVERY`` = N (``maskloop serve --retrain-every N``) starts a run after every N newly accepted
masks, the paper's cadence.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import replace
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from maskloop.errors import UserError
from maskloop.server.http.context import services
from maskloop.server.http.json_api import fail, json_body
from maskloop.server.jobs.services import Services
from maskloop.server.store.annotations import count_accepted

bp = Blueprint("learning", __name__, url_prefix="/api")


def trainable_mask_count(conn: Any) -> int:
    """Accepted masks a training run would use (see ``engine.learn.TRAINABLE_STAGES``)."""
    from maskloop.engine.learn import TRAINABLE_STAGES

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
        from maskloop.server.jobs.training import training_images
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


def _settings_from(body: dict, defaults: Any) -> Any:
    """``LearnSettings`` from a request body over ``defaults`` (400 on the first bad field)."""
    allowed = {"steps", "minutes", "seed", "holdout", "eval_clicks", "force"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        fail(400, f"unknown field(s) {', '.join(unknown)}; a training run takes {', '.join(sorted(allowed))}")

    def number(key: str, kind: type, low: float, high: float) -> Any:
        value = body[key]
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (kind is float or float(value).is_integer())
        )
        if not ok or not low <= value <= high:
            fail(
                400,
                f"{key} must be {'an integer' if kind is int else 'a number'} from {low:g} to {high:g}, got {value!r}",
            )
        return kind(value)

    if "steps" in body and "minutes" in body:
        fail(400, "give steps or minutes, not both")
    train = defaults.train
    if "steps" in body:
        train = replace(train, steps=number("steps", int, 1, 100_000))
    if "seed" in body:
        train = replace(train, seed=number("seed", int, 0, 2**31 - 1))
    settings = replace(defaults, train=train)
    if "minutes" in body:
        settings.minutes = number("minutes", float, 0.01, 24 * 60)
    if "holdout" in body:
        settings.holdout = number("holdout", float, 0, 0.9)
    if "eval_clicks" in body:
        settings.eval_clicks = number("eval_clicks", int, 5, 100)
    if "force" in body:
        if not isinstance(body["force"], bool):
            fail(400, f"force must be true or false, got {body['force']!r}")
        settings.force = body["force"]
    return settings


def job() -> TrainingJob:
    return current_app.extensions["maskloop.training"]


@bp.post("/train")
def start_training() -> tuple[Response, int]:
    settings = _settings_from(json_body() if request.get_data(cache=True).strip() else {}, job().default_settings())
    try:
        state = job().start(settings)
    except UserError as exc:
        fail(409, str(exc))
    return jsonify(state), 202


@bp.get("/train")
def training_state() -> Response:
    return jsonify(job().snapshot())


@bp.get("/models")
def list_versions() -> Response:
    from maskloop.server.http.db import get_db
    from maskloop.server.jobs.statistics import version_statistics

    svc = services()
    return jsonify({"active": svc.model.active_version(), "versions": version_statistics(get_db(), svc.model.versions)})


@bp.get("/models/active")
def active_version() -> Response:
    svc = services()
    return jsonify({"version": svc.model.active_version(), "model_id": svc.model.model_id})


@bp.post("/models/active")
def switch_version() -> Response:
    body = json_body()
    version = body.get("version")
    if set(body) != {"version"} or not isinstance(version, str):
        fail(400, 'send {"version": "<name>"}: a version name such as v0002, or base')
    svc = services()
    try:
        svc.model.versions.activate(version, svc.model.checkpoint_sha256)
    except UserError as exc:
        fail(404 if "no model version" in str(exc) else 409, str(exc))
    return jsonify({"version": svc.model.active_version(), "model_id": svc.model.model_id})


def init_app(app: Flask, svc: Services) -> None:
    """The app's training job (``app.extensions["maskloop.training"]``)."""
    every, steps = app.config.get("RETRAIN_EVERY"), app.config.get("TRAIN_STEPS")
    app.extensions["maskloop.training"] = TrainingJob(
        svc, app.config["DATABASE"], int(every) if every else None, int(steps) if steps else None
    )
