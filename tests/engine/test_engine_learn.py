"""The data engine learns: training on accepted masks, the held-out gate, model versions.

Everything is real: scikit-image's texture photographs composed into a domain with exact masks,
the default model's weights, embeddings from its encoder, a SQLite store, the ONNX export.
Runs are a few dozen steps (the real numbers are in bench/bench_train.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from maskloop.engine import learn as learn_mod
from maskloop.engine.texture_domain import write_texture_domain
from maskloop.engine.train import TrainSettings, prepare_sample, train_decoder
from maskloop.engine.versions import BASE, ModelVersions, with_mask_decoder

pytest.importorskip("skimage")
pytestmark = pytest.mark.slow


def maskloop(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "MASKLOOP_TORCH_THREADS": "2"}
    return subprocess.run(
        [sys.executable, "-m", "maskloop.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def texture_project(tmp_path_factory) -> Path:
    """Six texture images with their exact masks imported as accepted annotations."""
    data = tmp_path_factory.mktemp("texture") / "images"
    coco = write_texture_domain(data, 6, seed=3)
    done = maskloop("import-coco", str(coco), "--data", str(data))
    assert done.returncode == 0, done.stderr
    return data


def test_texture_domain_is_deterministic_and_exact(tmp_path):
    a = write_texture_domain(tmp_path / "a", 2, seed=5)
    b = write_texture_domain(tmp_path / "b", 2, seed=5)
    assert a.read_text() == b.read_text()
    assert (tmp_path / "a" / "texture_000.png").read_bytes() == (tmp_path / "b" / "texture_000.png").read_bytes()
    from maskloop.masks import decode

    coco = json.loads(a.read_text())
    per_image: dict[int, list[np.ndarray]] = {}
    for ann in coco["annotations"]:
        mask = decode(ann["segmentation"]).astype(bool)
        assert mask.sum() == ann["area"] > 400
        per_image.setdefault(ann["image_id"], []).append(mask)
    for masks in per_image.values():
        assert 3 <= len(masks) <= 5
        assert np.sum(masks, axis=0).max() == 1, "objects of one image must not overlap"


@pytest.fixture(scope="module")
def samples(engine_model, tmp_path_factory):
    """Training samples of two texture images, with real embeddings of the default encoder."""
    from PIL import Image

    from maskloop.exporter.embedding import ImageEmbedder
    from maskloop.masks import decode

    folder = tmp_path_factory.mktemp("samples")
    coco = json.loads(write_texture_domain(folder, 2, seed=11).read_text())
    embedder = ImageEmbedder(engine_model, device="cpu", precision="fp32")
    out = []
    for image in coco["images"]:
        pixels = np.asarray(Image.open(folder / image["file_name"]).convert("RGB"))
        masks = [decode(a["segmentation"]).astype(bool) for a in coco["annotations"] if a["image_id"] == image["id"]]
        out.append(prepare_sample(embedder.embed([pixels]), masks))
    return out


def test_prepare_sample_frames(samples):
    s = samples[0]
    assert s.embedding.shape == (1, 256, 64, 64)
    assert s.valid == (256, 256)  # a square 512 image fills the whole low-res frame
    assert s.targets.shape[1:] == (1, 256, 256) and set(np.unique(s.targets.numpy())) <= {0.0, 1.0}
    # boxes are in the 1024 frame: the 512 image is scaled by 2
    assert s.boxes_model.max() <= 1024 and s.boxes_model.min() >= 0
    assert (s.interior.max(axis=(1, 2)) > 3).all()


def test_training_lowers_the_loss_and_leaves_the_base_alone(engine_model, samples):
    before = {k: v.clone() for k, v in engine_model.mask_decoder.state_dict().items()}
    model = with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict())
    settings = TrainSettings(steps=36, lr=1e-3, warmup_steps=3, masks_per_step=2, max_rounds=2, seed=1)
    result = train_decoder(model, samples, settings)
    assert result.steps == 36
    first, last = np.mean(result.losses[:12]), np.mean(result.losses[-12:])
    assert last < 0.8 * first, f"loss did not fall: {first:.4f} -> {last:.4f}"
    assert all(torch.equal(v, engine_model.mask_decoder.state_dict()[k]) for k, v in before.items())
    assert not all(torch.equal(v, model.mask_decoder.state_dict()[k]) for k, v in before.items())


def test_training_is_deterministic_for_a_seed(engine_model, samples):
    def run(seed: int) -> dict:
        model = with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict())
        train_decoder(model, samples, TrainSettings(steps=3, masks_per_step=2, max_rounds=2, seed=seed))
        return model.mask_decoder.state_dict()

    a, b, c = run(4), run(4), run(5)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_decide_gate():
    before = {"miou@1": 0.5, "miou@3": 0.6, "miou@5": 0.7, "noc85": 9.0}
    better = {"miou@1": 0.7, "miou@3": 0.7, "miou@5": 0.75, "noc85": 7.0}
    assert learn_mod.decide(before, better, force=False)[0]
    worse = {"miou@1": 0.4, "miou@3": 0.6, "miou@5": 0.7, "noc85": 9.0}
    ok, why = learn_mod.decide(before, worse, force=False)
    assert not ok and why.startswith("not activated") and "0.6000 -> 0.5667" in why
    assert learn_mod.decide(before, worse, force=True)[0]
    assert learn_mod.decide(before, {**better, "noc85": 9.5}, force=False)[0]  # within the slack
    more_clicks = {**better, "noc85": 9.6}
    assert not learn_mod.decide(before, more_clicks, force=False)[0]


def test_train_versions_switch_and_rollback(texture_project):
    done = maskloop(
        "train", "--data", str(texture_project), "--steps", "4", "--eval-clicks", "5", "--holdout", "0.3", "--json"
    )  # versions, not learning, are tested here: a few steps make a version
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == "v0001" and report["compared_with"] == BASE
    assert report["holdout"]["images"] == 2 and report["train"]["images"] == 4
    assert not set(report["holdout"]["annotation_ids"]) & set(report["train"]["annotation_ids"])
    for m in (report["before"], report["after"]):
        assert set(m) >= {"miou@1", "miou@3", "miou@5", "noc85", "noc90", "box_miou"} and m["objects"] > 0
    assert report["reason"].startswith(("activated", "not activated"))
    assert report["export_verify"]["fp32"]["mean_iou"] >= 0.99  # the ONNX decoder is its PyTorch weights
    folder = texture_project / ".maskloop" / "models" / "v0001"
    assert (folder / "mask_decoder.pt").is_file() and (folder / "onnx" / "decoder.onnx").is_file()
    manifest = json.loads((folder / "onnx" / "manifest.json").read_text())
    assert manifest["model_version"] == "v0001" and manifest["variant"] == "lowres"
    # the page's fast path (a per-image prefix + per-prompt graph) exists for a trained version too
    split = manifest["prefix"]
    assert all((folder / "onnx" / split[part]["file"]).is_file() for part in ("prefix", "prompt"))
    assert split["verify"]["mean_iou"] >= 0.99

    forced = maskloop(
        "train",
        "--data",
        str(texture_project),
        "--steps",
        "2",
        "--eval-clicks",
        "5",
        "--holdout",
        "0.3",
        "--force",
        "--seed",
        "2",
        "--json",
    )
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["activated"]
    listed = json.loads(maskloop("models", "--data", str(texture_project), "--json").stdout)
    assert [r["version"] for r in listed] == ["base", "v0001", "v0002"]
    assert [r["active"] for r in listed] == [False, False, True]
    assert listed[1]["heldout"] == report["after"]

    assert maskloop("models", "use", "base", "--data", str(texture_project)).returncode == 0
    assert ModelVersions(folder.parent).active() == BASE
    assert maskloop("models", "use", "v0001", "--data", str(texture_project)).returncode == 0
    assert ModelVersions(folder.parent).active() == "v0001"
    bad = maskloop("models", "use", "v0042", "--data", str(texture_project))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no model version 'v0042'" in bad.stderr

    # any version of the project evaluates on any data set
    ev = maskloop(
        "evaluate",
        "--coco",
        str(texture_project / "annotations.json"),
        "--images",
        str(texture_project),
        "--data",
        str(texture_project),
        "--model-version",
        "v0001",
        "--max-clicks",
        "3",
        "--json",
    )
    assert ev.returncode == 0, ev.stderr
    summary = json.loads(ev.stdout)
    assert summary["model_version"] == "v0001" and len(summary["miou_at_clicks"]) == 3


def test_train_without_accepted_masks_is_one_line(tmp_path):
    data = tmp_path / "empty"
    write_texture_domain(data, 1, seed=0)  # images, but nothing imported
    done = maskloop("train", "--data", str(data), "--steps", "2")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no accepted masks to train on" in done.stderr
    assert not (data / ".maskloop" / "models" / "v0001").exists()


def test_interrupted_run_leaves_no_version(texture_project, engine_model):
    from maskloop.cli.context import StoreContext
    from maskloop.engine.learn import LearnSettings, learn
    from maskloop.server.jobs.training import training_images

    class Args:
        data, workdir, device = texture_project, None, "cpu"

    ctx = StoreContext(Args())
    versions = ctx.versions
    active = versions.active()
    names = versions.names()
    stale = versions.root / ".partial-v0099-1"  # what a SIGKILL during an export leaves
    stale.mkdir(parents=True)

    def interrupt(event: dict) -> None:
        if event.get("step") == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        learn(
            lambda: training_images(ctx.store.conn),
            engine_model,
            model_type="vit_t",
            base_sha256=ctx.model.checkpoint_sha256,
            versions=versions,
            embedding_of=ctx.annotated_embedding,
            settings=LearnSettings(train=TrainSettings(steps=5), eval_clicks=5, holdout=0.3),
            progress=interrupt,
        )
    assert versions.names() == names and versions.active() == active
    assert not list(versions.root.glob(".partial-*")), "the run must remove what interrupted runs left"


def test_sigkill_during_training_leaves_the_project_as_it_was(texture_project):
    versions = ModelVersions(texture_project / ".maskloop" / "models")
    names, active = versions.names(), versions.active()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "maskloop.cli",
            "train",
            "--data",
            str(texture_project),
            "--steps",
            "500",
            "--eval-clicks",
            "5",
            "--holdout",
            "0.3",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MASKLOOP_TORCH_THREADS": "2"},
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "training" in line or not line:
                break
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert versions.names() == names and versions.active() == active
    again = maskloop("train", "--data", str(texture_project), "--steps", "2", "--eval-clicks", "5", "--holdout", "0.3")
    assert again.returncode == 0, again.stderr  # the lock died with the process


def test_unreadable_image_is_skipped_with_a_line(tmp_path):
    data = tmp_path / "images"
    coco = write_texture_domain(data, 4, seed=8)
    assert maskloop("import-coco", str(coco), "--data", str(data)).returncode == 0
    (data / "texture_001.png").write_bytes(b"not a png any more")
    done = maskloop("train", "--data", str(data), "--steps", "2", "--eval-clicks", "5", "--holdout", "0.3")
    assert done.returncode == 0, done.stderr
    assert "texture_001.png" in done.stderr
