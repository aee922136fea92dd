"""Training runs, model versions and provenance through the HTTP API, on a real texture project."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from maskloop.engine.texture_domain import write_texture_domain
from maskloop.masks import encode

pytest.importorskip("skimage")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, onnx_dir):
    """An app on five texture images whose exact masks are accepted annotations."""
    from maskloop.server.http.app import create_app
    from maskloop.server.jobs.coco import import_coco
    from maskloop.server.store.db import open_database

    root = tmp_path_factory.mktemp("learning")
    coco = json.loads(write_texture_domain(root / "images", 5, seed=21).read_text())
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(root / "images"),
            "WORKDIR": str(root / "work"),
            "ONNX_DIR": str(onnx_dir),  # the base decoder's export, shared with the other tests
            "PRECOMPUTE": False,
            "DEVICE": "cpu",
            "TORCH_THREADS": 2,
            "TRAIN_STEPS": 6,
            "RETRAIN_EVERY": 3,
        }
    )
    conn = open_database(app.config["DATABASE"])
    import_coco(conn, coco)
    conn.close()
    yield app
    app.extensions["maskloop"].embeddings.stop()


def wait_for_training(client, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get("/api/train").get_json()
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.5)
    raise AssertionError(f"training did not finish in {timeout} s: {state}")


def test_train_switch_rollback_and_provenance(project):
    client = project.test_client()
    assert client.get("/api/train").get_json() == {"state": "idle"}
    assert client.get("/api/model").get_json()["model_version"] == "base"

    started = client.post("/api/train", json={"eval_clicks": 5, "holdout": 0.4, "force": True})
    assert started.status_code == 202, started.get_json()
    assert started.get_json()["state"] == "running"
    busy = client.post("/api/train", json={})
    assert busy.status_code == 409 and "already in progress" in busy.get_json()["error"]
    state = wait_for_training(client)
    assert state["state"] == "done", state
    report = state["report"]
    assert report["version"] == "v0001" and report["activated"] and report["train"]["steps"] == 6
    assert report["before"]["objects"] == report["after"]["objects"] > 0

    listed = client.get("/api/models").get_json()
    assert listed["active"] == "v0001"
    assert [v["version"] for v in listed["versions"]] == ["base", "v0001"]
    assert listed["versions"][1]["heldout"] == report["after"]

    manifest = client.get("/api/model").get_json()
    assert manifest["model_version"] == "v0001"
    sha = manifest["decoders"]["fp32"]["sha256"][:16]
    assert manifest["decoder_url"] == f"/models/v0001/decoder.onnx?sha256={sha}"  # immutable: the URL names the bytes
    assert manifest["prefix"]["prompt"]["url"].startswith("/models/v0001/decoder_prompt.onnx?sha256=")
    onnx = client.get(manifest["decoder_url"])
    assert onnx.status_code == 200 and len(onnx.data) > 1_000_000
    assert "immutable" in onnx.headers["Cache-Control"]
    assert client.get("/models/v0001/maskloop.db").status_code == 404
    assert client.get("/models/v0999/decoder.onnx").status_code == 404
    assert client.get("/api/models/active").get_json()["version"] == "v0001"

    # a mask accepted now records the version the page used
    image = client.get("/api/images").get_json()[0]
    mask = np.zeros((image["height"], image["width"]), bool)
    mask[10:40, 10:40] = True
    body = {"category_id": 1, "segmentation": encode(mask)}
    made = client.post(f"/api/images/{image['id']}/annotations", json=body)
    assert made.status_code == 201 and made.get_json()["model_version"] == "v0001"
    said = client.post(f"/api/images/{image['id']}/annotations", json={**body, "model_version": "base"})
    assert said.get_json()["model_version"] == "base"
    bad = client.post(f"/api/images/{image['id']}/annotations", json={**body, "model_version": "../x"})
    assert bad.status_code == 400 and "model_version" in bad.get_json()["error"]
    exported = client.get("/api/export/coco").get_json()["annotations"]
    assert {a.get("model_version") for a in exported if a["id"] == made.get_json()["id"]} == {"v0001"}

    # switch back (rollback) and forth
    back = client.post("/api/models/active", json={"version": "base"})
    assert back.status_code == 200 and back.get_json()["version"] == "base"
    assert client.get("/api/model").get_json()["decoder_url"].startswith("/models/base/decoder.onnx?sha256=")
    assert client.post("/api/models/active", json={"version": "v0001"}).get_json()["version"] == "v0001"
    missing = client.post("/api/models/active", json={"version": "v0042"})
    assert missing.status_code == 404 and "no model version" in missing.get_json()["error"]
    assert client.post("/api/models/active", json={"name": "v1"}).status_code == 400

    usage = {v["version"]: v["usage"]["masks"] for v in client.get("/api/models").get_json()["versions"]}
    assert usage["v0001"] == 1 and usage["base"] == 1


def test_bad_training_requests(project):
    client = project.test_client()
    for body, words in (
        ({"steps": 0}, "steps"),
        ({"steps": "ten"}, "steps"),
        ({"lr": 1}, "unknown field"),
        ({"steps": 5, "minutes": 1}, "not both"),
        ({"force": "yes"}, "force"),
        ({"holdout": 2}, "holdout"),
    ):
        answer = client.post("/api/train", json=body)
        assert answer.status_code == 400 and words in answer.get_json()["error"], body


def test_retrain_every_n_accepted_masks(project):
    client = project.test_client()
    wait_for_training(client, 600) if client.get("/api/train").get_json()["state"] == "running" else None
    before = len(client.get("/api/models").get_json()["versions"])
    image = client.get("/api/images").get_json()[1]
    for k in range(3):
        mask = np.zeros((image["height"], image["width"]), bool)
        mask[20 * k : 20 * k + 15, 5:30] = True
        made = client.post(
            f"/api/images/{image['id']}/annotations", json={"category_id": 1, "segmentation": encode(mask)}
        )
        assert made.status_code == 201
    state = client.get("/api/train").get_json()
    assert state["state"] in ("running", "done") and "new accepted masks" in state["reason"]
    assert wait_for_training(client)["state"] == "done"
    assert len(client.get("/api/models").get_json()["versions"]) == before + 1
