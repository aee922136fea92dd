"""What outlives a server process of a project's training job: the last run's state and the cadence.

Two small JSON files in the project's models folder, beside the versions (``engine/versions.py``),
each written atomically (``write_json_atomic``):

  training.json  the job's state (``TrainingJob.snapshot``) as of its last start or end. A server
                 that starts and finds ``"state": "running"`` there was stopped during that run: it
                 records the run as failed (``after_restart``). A run writes its version apart
                 (``ModelVersions.new_version``: a ``.partial-*`` folder renamed when complete), so an
                 interrupted run leaves no version.
  cadence.json   ``{"retrain_every": N}``: a run after every N newly accepted masks; null: off.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from maskloop.engine.versions import write_json_atomic

JOB_FILE = "training.json"
CADENCE_FILE = "cadence.json"
#: The largest cadence the API takes (a run after every N accepted masks).
MAX_RETRAIN_EVERY = 1_000_000


def _read(path: Path) -> Any:
    """The JSON in ``path``; None when it is missing or unreadable (a file of another version, a disk error)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_job(root: Path) -> dict[str, Any] | None:
    """The job state a server left in ``root`` (the models folder), None without one."""
    state = _read(root / JOB_FILE)
    return state if isinstance(state, dict) and isinstance(state.get("state"), str) else None


def save_job(root: Path, state: dict[str, Any]) -> None:
    """Keep the job's state (JSON-ready; ``root`` is made when missing)."""
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / JOB_FILE, state)


def after_restart(state: dict[str, Any], versions_now: list[str]) -> dict[str, Any]:
    """The state a starting server reports for what ``load_job`` found: a run that was ``running``
    is ``failed`` (the process that ran it is gone); any other state is kept as it was.

    ``versions_now``: the complete versions (``ModelVersions.names``). A run killed between writing
    its version and saving its end wrote that version completely; the error names it.
    """
    if state.get("state") != "running":
        return state
    newest_at_start = state.get("newest_version")
    written = [v for v in versions_now if newest_at_start is None or int(v[1:]) > int(str(newest_at_start)[1:])]
    error = "interrupted by a server restart: no version was written"
    if written:
        error = f"interrupted by a server restart after writing {written[-1]} (see GET /api/models)"
    return {
        **{k: v for k, v in state.items() if k != "cancel_requested"},
        "state": "failed",
        "phase": "failed",
        "error": error,
        "finished": time.time(),
    }


def load_cadence(root: Path) -> tuple[bool, int | None]:
    """(found, N): the stored cadence (N None: off); (False, None) without a usable file."""
    stored = _read(root / CADENCE_FILE)
    if not isinstance(stored, dict) or "retrain_every" not in stored:
        return False, None
    every = stored["retrain_every"]
    if every is None:
        return True, None
    if isinstance(every, int) and not isinstance(every, bool) and 1 <= every <= MAX_RETRAIN_EVERY:
        return True, every
    return False, None


def save_cadence(root: Path, every: int | None) -> None:
    """Keep the cadence: a run after every ``every`` newly accepted masks (None: off)."""
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / CADENCE_FILE, {"retrain_every": every})
