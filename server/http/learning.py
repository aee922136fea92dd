"""The data engine's loop in the server: training runs in the background, model versions, switching.

Routes:
  ``POST /api/train``  start a training run (body, all optional: ``steps`` or ``minutes``, ``seed``,
                       ``holdout``, ``eval_clicks``, ``force``) -> 202 with the job's state, whose
                       ``settings`` say what the run uses; 409 while one runs. An empty body (or
                       none) is the default run: ``TRAIN_STEPS`` steps when configured, else
                       ``engine.train.TrainSettings``' 200; it is cancelled like any other run.
  ``GET /api/train``   the job: ``state`` (idle, running, done, failed, cancelled), ``phase``, ``step``/``steps``,
                       ``loss``, ``elapsed_s``, ``eta_s``, ``best`` (the best checkpoint's held-out score so
                       far), and when finished ``decision`` (version, activated, verdict, reason) with
                       ``report`` (the version's ``version.json``), or ``error``. A run a server restart
                       interrupted reads ``failed``.
  ``POST /api/train/cancel``   stop the running run; nothing of it is written -> the job (409 when none runs).
  ``GET /api/train/cadence``   ``{"retrain_every": N | null}``; ``PUT`` the same to change it (null: off).
  ``GET /api/models``  every version with its held-out metrics and per-version usage (``engine.stats``).
  ``GET /api/models/active``   ``{"version", "model_id"}``: what the page polls to hot-swap its decoder.
  ``POST /api/models/active``  ``{"version": "v0002" | "base"}``: switch (rollback included).

``RETRAIN_EVERY`` = N (``maskloop serve --retrain-every N``) starts a run after every N newly accepted
masks, the paper's cadence.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from maskloop import validate
from maskloop.errors import UserError
from maskloop.server.http.context import services
from maskloop.server.http.json_api import fail, json_body
from maskloop.server.jobs.services import Services
from maskloop.server.jobs.training import TrainingJob

bp = Blueprint("learning", __name__, url_prefix="/api")


def _settings_from(body: dict, defaults: Any) -> Any:
    """``LearnSettings`` from a request body over ``defaults`` (400 on the first bad field)."""
    allowed = {"steps", "minutes", "seed", "holdout", "eval_clicks", "force"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        fail(400, f"unknown field(s) {', '.join(unknown)}; a training run takes {', '.join(sorted(allowed))}")

    def number(key: str, kind: type, low: float, high: float) -> Any:
        """``body[key]`` as ``kind`` in [low, high]; the range is checked before any float
        conversion (a 400-digit integer is refused, not an OverflowError). An integral float
        such as 100.0 is taken for an integer."""
        value = body[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
        if ok and kind is int and isinstance(value, float):
            ok = value.is_integer()
        if not ok:
            what = "an integer" if kind is int else "a number"
            fail(400, f"{key} must be {what} from {low:g} to {high:g}, got {validate.brief(value)}")
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
        settings.force = validate.boolean(body["force"], "force")
    return settings


def job() -> TrainingJob:
    """The app's training job (one per server)."""
    training: TrainingJob = current_app.extensions["maskloop.training"]
    return training


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


@bp.post("/train/cancel")
def cancel_training() -> Response:
    try:
        return jsonify(job().cancel(wait_s=0.5))
    except UserError as exc:
        fail(409, str(exc))


@bp.get("/train/cadence")
def training_cadence() -> Response:
    return jsonify({"retrain_every": job().retrain_every})


@bp.put("/train/cadence")
def set_training_cadence() -> Response:
    from maskloop.server.jobs.training_record import MAX_RETRAIN_EVERY

    body = json_body()
    every = body.get("retrain_every", "missing")
    valid = every is None or (
        isinstance(every, int) and not isinstance(every, bool) and 1 <= every <= MAX_RETRAIN_EVERY
    )
    if set(body) != {"retrain_every"} or not valid:
        fail(400, f'send {{"retrain_every": N}} with N from 1 to {MAX_RETRAIN_EVERY}, or null to stop retraining')
    job().set_retrain_every(every)
    return jsonify({"retrain_every": job().retrain_every})


@bp.get("/models")
def list_versions() -> Response:
    from maskloop.server.http.db import get_db
    from maskloop.server.jobs.statistics import rating_statistics, version_statistics

    svc = services()
    db = get_db()
    return jsonify(
        {
            "active": svc.model.active_version(),
            "versions": version_statistics(db, svc.model.versions),
            "ratings": rating_statistics(db),  # 1..10 mask ratings per stage and per version
        }
    )


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
