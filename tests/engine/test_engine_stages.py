"""Stages 2 and 3 on a real store: proposals through the API, ``auto`` resuming, statistics."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from pycocotools.coco import COCO

from maskloop.paths import SAMPLE_IMAGES

BACKENDS = ("sqlite", "postgresql")  # the API's proposals and statistics on both stores (tests/conftest.py)


@pytest.fixture
def cat_dir(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(SAMPLE_IMAGES / "chelsea.jpg", root / "chelsea.jpg")
    return root


@pytest.fixture
def client(cat_dir, tmp_path, database):
    from maskloop.server import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(cat_dir),
            "WORKDIR": str(tmp_path / "work"),
            "DATABASE": database,
            "PRECOMPUTE": False,
            "DEVICE": "cpu",
            "TORCH_THREADS": 2,
        }
    )
    yield app.test_client()
    app.extensions["maskloop"].embeddings.stop()


def test_proposals_accept_reject_and_stats(client):
    created = client.post("/api/images/1/propose", json={"points_per_side": 6})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["created"] >= 2 and len(body["ids"]) == body["created"]
    anns = client.get("/api/images/1/annotations").get_json()
    proposals = [a for a in anns if a["status"] == "proposed"]
    assert len(proposals) == body["created"] and all(a["stage"] == "semi" for a in proposals)
    assert all(0 < a["predicted_iou"] <= 1.2 and a["stability_score"] >= 0.95 for a in proposals)

    again = client.post("/api/images/1/propose", json={"points_per_side": 6}).get_json()
    assert again["created"] == 0, "re-proposing must not duplicate pending proposals"

    assert client.patch(f"/api/annotations/{proposals[0]['id']}", json={"status": "accepted"}).status_code == 200
    assert client.patch(f"/api/annotations/{proposals[1]['id']}", json={"status": "rejected"}).status_code == 200
    stats = client.get("/api/stats").get_json()
    semi = stats["stages"]["semi"]
    assert semi["masks"] == 1 and semi["images"] == 1 and semi["proposal_acceptance_rate"] == 0.5
    assert semi["proposals_pending"] == body["created"] - 2
    page = client.get("/stats")
    assert page.status_code == 200 and b"semi" in page.data and b"34 -&gt; 14" in page.data

    exported = client.get("/api/export/coco").get_json()
    assert [a["id"] for a in exported["annotations"]] == [proposals[0]["id"]]
    assert "predicted_iou" in exported["annotations"][0]


def test_propose_bad_input(client):
    bad = client.post("/api/images/1/propose", json={"points_per_side": "many"})
    assert bad.status_code == 400 and "points_per_side" in bad.get_json()["error"]
    assert client.post("/api/images/99/propose", json={}).status_code == 404


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "maskloop.cli", *args], capture_output=True, text=True, timeout=900)


def test_auto_writes_scored_coco_and_resumes(cat_dir, tmp_path):
    out = tmp_path / "auto.json"
    first = _cli("auto", "--data", str(cat_dir), "--points-per-side", "6", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "1 images to annotate (0 done before)" in first.stderr
    n_first = len(json.loads(out.read_text())["annotations"])
    assert n_first >= 2

    shutil.copy(SAMPLE_IMAGES / "coffee.jpg", cat_dir / "coffee.jpg")  # the folder grew after an interruption
    second = _cli("auto", "--data", str(cat_dir), "--points-per-side", "6", "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert "1 images to annotate (1 done before)" in second.stderr
    coco = COCO(str(out))
    anns = coco.dataset["annotations"]
    assert len({a["image_id"] for a in anns}) == 2 and len(anns) > n_first
    assert all("predicted_iou" in a and "stability_score" in a for a in anns)
    assert [c["name"] for c in coco.dataset["categories"]] == ["object"]
    for a in anns:
        assert coco.annToMask(a).sum() == a["area"]

    stats = _cli("stats", "--data", str(cat_dir), "--json")
    assert stats.returncode == 0, stats.stderr
    auto = json.loads(stats.stdout)["stages"]["auto"]
    assert auto["images"] == 2 and auto["masks"] == len(anns)


def test_stage_commands_reject_bad_arguments(cat_dir):
    done = _cli("propose", "--data", str(cat_dir), "--image", "nope.jpg", "--points-per-side", "4")
    assert done.returncode == 2 and "no usable image 'nope.jpg'" in done.stderr and done.stderr.count("\n") == 1
    done = _cli("auto", "--data", str(cat_dir / "missing"), "--out", "x.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
