"""Stages 2 and 3 on a real store: proposals through the API, ``auto`` resuming, statistics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from engine_fixtures import activate_noisy_version
from pycocotools.coco import COCO
from support import cli

from maskloop.engine.automatic import GeneratorSettings
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
    from maskloop.server.http.app import create_app

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


def test_propose_reuses_its_generator_until_another_version_is_activated(client, engine_model):
    """The server builds one generator per (model version, settings): a second Propose reuses it
    (no re-hash of the decoder, no new graph session); activating a version gives a new one."""
    model = client.application.extensions["maskloop"].model
    for _ in range(2):
        assert client.post("/api/images/1/propose", json={"points_per_side": 4}).status_code == 201
    assert model.generators_built == 1
    first = model.generator(GeneratorSettings(points_per_side=4), "base")
    assert client.post("/api/images/1/propose", json={"points_per_side": 5}).status_code == 201
    assert model.generators_built == 2, "other settings need their own generator"

    version = activate_noisy_version(engine_model, Path(client.application.config["MODELS_DIR"]))
    created = client.post("/api/images/1/propose", json={"points_per_side": 4})
    assert created.status_code == 201 and model.generators_built == 3
    second = model.generator(GeneratorSettings(points_per_side=4), version)
    assert second is not first and second.model is not first.model
    assert second.model.mask_decoder is not first.model.mask_decoder
    anns = client.get("/api/images/1/annotations").get_json()
    assert {a["model_version"] for a in anns if a["id"] in created.get_json()["ids"]} <= {version}


def _cli(*args):
    return cli.run(*args)


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


def test_auto_resumes_only_the_model_version_it_ran_with(cat_dir, tmp_path, engine_model):
    """After another version is activated, ``auto`` refuses to mix its masks with the earlier run's
    (one line naming ``--restart``); ``--restart`` relabels every image with the active version."""
    out, grid = tmp_path / "auto.json", ("--points-per-side", "4")
    assert _cli("auto", "--data", str(cat_dir), *grid, "--out", str(out)).returncode == 0
    with_base = json.loads(out.read_text())["annotations"]
    assert with_base and {a["model_version"] for a in with_base} == {"base"}

    version = activate_noisy_version(engine_model, cat_dir / ".maskloop" / "models")
    mixed = _cli("auto", "--data", str(cat_dir), *grid, "--out", str(out))
    assert mixed.returncode == 2 and mixed.stderr.count("\n") == 1, mixed.stderr
    assert "another model version" in mixed.stderr and "@base" in mixed.stderr and "--restart" in mixed.stderr
    assert json.loads(out.read_text())["annotations"] == with_base

    restarted = _cli("auto", "--data", str(cat_dir), *grid, "--out", str(out), "--restart")
    assert restarted.returncode == 0, restarted.stderr
    assert f"deleted {len(with_base)} automatic masks" in restarted.stderr
    assert "1 images to annotate (0 done before)" in restarted.stderr
    with_version = json.loads(out.read_text())["annotations"]
    assert with_version and {a["model_version"] for a in with_version} == {version}
    counts = lambda anns: sorted(a["segmentation"]["counts"] for a in anns)  # noqa: E731
    assert counts(with_version) != counts(with_base)

    resumed = _cli("auto", "--data", str(cat_dir), *grid, "--out", str(out))
    assert resumed.returncode == 0 and "0 images to annotate (1 done before)" in resumed.stderr
    assert json.loads(out.read_text())["annotations"] == with_version


def test_stage_commands_reject_bad_arguments(cat_dir):
    done = _cli("propose", "--data", str(cat_dir), "--image", "nope.jpg", "--points-per-side", "4")
    assert done.returncode == 2 and "no usable image 'nope.jpg'" in done.stderr and done.stderr.count("\n") == 1
    done = _cli("auto", "--data", str(cat_dir / "missing"), "--out", "x.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
