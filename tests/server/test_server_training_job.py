"""The training job through the HTTP API: cancel, the cadence, a run's decision, and a server
restart during a run (on a real texture project, the real model, SQLite)."""

from __future__ import annotations

import json
import time

import pytest

from maskloop.engine.texture_domain import write_texture_domain

pytest.importorskip("skimage")
pytestmark = pytest.mark.slow


def make_app(root, onnx_dir):
    from maskloop.server.http.app import create_app

    return create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(root / "images"),
            "WORKDIR": str(root / "work"),
            "ONNX_DIR": str(onnx_dir),
            "PRECOMPUTE": False,
            "DEVICE": "cpu",
            "TORCH_THREADS": 2,
        }
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory, onnx_dir):
    """A folder of four texture images whose exact masks are accepted annotations, and its app."""
    from maskloop.server.jobs.coco import import_coco
    from maskloop.server.store.db import open_database

    root = tmp_path_factory.mktemp("training-job")
    coco = json.loads(write_texture_domain(root / "images", 4, seed=23).read_text())
    app = make_app(root, onnx_dir)
    conn = open_database(app.config["DATABASE"])
    import_coco(conn, coco)
    conn.close()
    yield root, app
    app.extensions["maskloop"].embeddings.stop()


def wait_until(client, done, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get("/api/train").get_json()
        if done(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"the job did not get there in {timeout} s: {state}")


def versions_on_disk(root) -> list[str]:
    return sorted(p.name for p in (root / "work" / "models").glob("v*"))


def test_cancel_writes_nothing_and_a_restart_marks_a_run_failed(project, onnx_dir):
    root, app = project
    client = app.test_client()
    assert client.post("/api/train/cancel").status_code == 409  # nothing runs
    started = client.post("/api/train", json={"steps": 2000, "eval_clicks": 5})
    assert started.status_code == 202 and started.get_json()["state"] == "running"
    running = wait_until(client, lambda s: (s.get("step") or 0) >= 2)
    assert running["steps"] == 2000 and running["elapsed_s"] > 0 and running["eta_s"] > 0

    # a second server on the same folder (a restart) finds the run's record "running": failed
    other = make_app(root, onnx_dir)
    try:
        after_restart = other.test_client().get("/api/train").get_json()
    finally:
        other.extensions["maskloop"].embeddings.stop()
    assert after_restart["state"] == "failed"
    assert after_restart["error"] == "interrupted by a server restart: no version was written"

    cancelled = client.post("/api/train/cancel")
    assert cancelled.status_code == 200
    final = wait_until(client, lambda s: s["state"] != "running", timeout=120)
    assert final["state"] == "cancelled" and "error" in final
    assert versions_on_disk(root) == []
    assert [v["version"] for v in client.get("/api/models").get_json()["versions"]] == ["base"]
    assert client.post("/api/train/cancel").status_code == 409


def test_a_refused_run_says_why(project):
    root, app = project
    client = app.test_client()
    assert client.post("/api/train", json={"steps": 1, "eval_clicks": 5, "seed": 3}).status_code == 202
    final = wait_until(client, lambda s: s["state"] != "running")
    assert final["state"] == "done", final
    decision = final["decision"]
    assert decision["version"] == versions_on_disk(root)[-1]
    assert decision["verdict"] in ("refused", "activated")
    assert decision["reason"] == final["report"]["reason"] and decision["reason"].startswith(decision["verdict"])
    listed = {v["version"]: v for v in client.get("/api/models").get_json()["versions"]}
    gate = listed[decision["version"]]["gate"]
    assert gate["verdict"] == decision["verdict"] and {r["metric"] for r in gate["rows"]} >= {"miou@1", "box_miou"}
    assert listed["base"]["active"] == (decision["verdict"] == "refused")


def test_cadence_is_kept_and_checked(project, onnx_dir):
    root, app = project
    client = app.test_client()
    assert client.get("/api/train/cadence").get_json() == {"retrain_every": None}
    assert client.put("/api/train/cadence", json={"retrain_every": 5}).get_json() == {"retrain_every": 5}
    other = make_app(root, onnx_dir)
    try:
        assert other.test_client().get("/api/train/cadence").get_json() == {"retrain_every": 5}
    finally:
        other.extensions["maskloop"].embeddings.stop()
    for bad in ({"retrain_every": 0}, {"retrain_every": "5"}, {"retrain_every": []}, {"retrain_every": True},
                {"retrain_every": 10**400}, {"every": 5}, {}):  # fmt: skip
        answer = client.put("/api/train/cadence", json=bad)
        assert answer.status_code == 400 and "retrain_every" in answer.get_json()["error"], bad
    assert client.put("/api/train/cadence", json={"retrain_every": None}).get_json() == {"retrain_every": None}


def test_an_empty_body_starts_the_default_run_and_cancel_stops_it(project):
    """Issue 25: ``POST /api/train`` with no body runs the documented defaults (200 steps) and
    says so, and ``POST /api/train/cancel`` stops it, whatever phase it is in; nothing is written."""
    from maskloop.engine.train import TrainSettings

    root, app = project
    client = app.test_client()
    before = versions_on_disk(root)  # the module's project: earlier tests may have made versions
    started = client.post("/api/train")  # no body, no content type: what curl -X POST sends
    assert started.status_code == 202, started.get_json()
    state = started.get_json()
    assert state["state"] == "running" and state["cancel"] == "POST /api/train/cancel"
    assert state["settings"] == {
        "steps": TrainSettings().steps,
        "seed": 0,
        "holdout": 0.2,
        "eval_clicks": 20,
        "force": False,
    }
    assert client.post("/api/train", json={}).status_code == 409  # one run at a time
    assert client.post("/api/train/cancel").status_code == 200
    final = wait_until(client, lambda s: s["state"] != "running", timeout=300)
    assert final["state"] == "cancelled", final
    assert versions_on_disk(root) == before
