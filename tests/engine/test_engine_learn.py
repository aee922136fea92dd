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
from support import cli

from maskloop.engine.texture_domain import write_texture_domain
from maskloop.engine.train import TrainSettings, train_decoder
from maskloop.engine.train_samples import prepare_sample
from maskloop.engine.versions import BASE, ModelVersions, with_mask_decoder

pytest.importorskip("skimage")
pytestmark = pytest.mark.slow


def maskloop(*args: str) -> subprocess.CompletedProcess:
    """``maskloop ARGS...`` in this process (the SIGKILL test starts a real one)."""
    return cli.run(*args, env={"MASKLOOP_TORCH_THREADS": "2"})


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
def texture_split(engine_model, tmp_path_factory):
    """Two texture images as (embedding [1,256,64,64] of the default encoder, [HxW bool exact masks])."""
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
        out.append((embedder.embed([pixels]), masks))
    return out


@pytest.fixture(scope="module")
def samples(texture_split):
    """Training samples of the two texture images."""
    return [prepare_sample(embedding, masks) for embedding, masks in texture_split]


def test_prepare_sample_frames(samples):
    s = samples[0]
    assert s.embedding.shape == (1, 256, 64, 64)
    assert s.valid == (256, 256)  # a square 512 image fills the whole low-res frame
    assert s.targets.shape[1:] == (1, 256, 256) and set(np.unique(s.targets.numpy())) <= {0.0, 1.0}
    # boxes are in the 1024 frame: the 512 image is scaled by 2
    assert s.boxes_model.max() <= 1024 and s.boxes_model.min() >= 0
    assert (s.interior.max(axis=(1, 2)) > 3).all()


def test_training_fits_its_masks_and_leaves_the_base_alone(engine_model, texture_split, samples):
    from maskloop.engine.checkpoints import click_protocol

    before = {k: v.clone() for k, v in engine_model.mask_decoder.state_dict().items()}
    model = with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict())
    settings = TrainSettings(
        steps=36, lr=3e-4, warmup_steps=3, masks_per_step=2, point_rounds=2, mask_only_rounds=1, seed=1
    )
    result = train_decoder(model, samples, settings)
    assert result.steps == 36
    # lr 1e-3 diverged on an AMD EPYC (loss 0.89 -> 0.83, mIoU@1 on these masks 0.54 -> 0.53; it had
    # passed on an Intel Xeon); at 3e-4 two seeds gave 0.59 -> 0.16 and 0.25 -> 0.13, @1 -> 0.82 and 0.78
    first, last = np.mean(result.losses[:12]), np.mean(result.losses[-12:])
    assert last < 0.8 * first, f"loss did not fall: {first:.4f} -> {last:.4f}"
    fit_base = click_protocol(engine_model, texture_split, 3).summary()["miou_at_clicks"]
    fit_trained = click_protocol(model, texture_split, 3).summary()["miou_at_clicks"]
    assert fit_trained[0] > fit_base[0] + 0.05, f"mIoU@1 on the trained masks: {fit_base} -> {fit_trained}"
    assert all(torch.equal(v, engine_model.mask_decoder.state_dict()[k]) for k, v in before.items())
    assert not all(torch.equal(v, model.mask_decoder.state_dict()[k]) for k, v in before.items())


def test_training_is_deterministic_for_a_seed(engine_model, samples):
    def run(seed: int) -> dict:
        model = with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict())
        train_decoder(
            model, samples, TrainSettings(steps=3, masks_per_step=2, point_rounds=2, mask_only_rounds=1, seed=seed)
        )
        return model.mask_decoder.state_dict()

    a, b, c = run(4), run(4), run(5)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_gate_table_and_verdict():
    from maskloop.engine import gate

    curve = {f"miou@{k}": 0.5 + 0.04 * k for k in range(1, 11)}
    base = {**curve, "noc85": 5.0, "noc90": 7.0, "box_miou": 0.8, "generic_miou@1": 0.6, "generic_miou@5": 0.8}
    base["per_object"] = {"miou@1": [0.5] * 8}
    better = {**base, "miou@1": 0.7, "per_object": {"miou@1": [0.69, 0.71] * 4}, "noc90": 6.5}
    ok, record, reason = gate.decide(base, base, better, "base", force=False)
    assert ok and record["verdict"] == "activated" and record["decided_by"] == "miou@1"
    assert [r["metric"] for r in record["rows"]][:10] == [f"miou@{k}" for k in range(1, 11)]
    assert {"noc85", "noc90", "box_miou", "generic_miou@1", "generic_miou@5"} <= {r["metric"] for r in record["rows"]}
    # the first click improves, the fifth falls: refused, and the fifth decides
    worse5 = {**better, "miou@5": base["miou@5"] - 0.01}
    ok, record, reason = gate.decide(base, base, worse5, "base", force=False)
    assert not ok and record["decided_by"] == "miou@5" and reason.startswith("refused: mIoU@5")
    assert gate.decide(base, base, worse5, "base", force=True)[1]["verdict"] == "forced"
    # NoC not up, box not down, photos kept, and a gain inside the noise is no gain
    for changed, metric in (
        ({"noc90": 7.1}, "noc90"),
        ({"box_miou": 0.79}, "box_miou"),
        ({"generic_miou@1": 0.57}, "generic_miou@1"),
        ({"miou@1": 0.6, "per_object": {"miou@1": [0.2, 1.0] * 4}}, "miou@1"),
    ):
        ok, record, _ = gate.decide(base, base, {**better, **changed}, "base", force=False)
        assert not ok and record["decided_by"] == metric, metric
    assert gate.decide(base, base, {**better, "box_miou": 0.796}, "base", force=False)[0]  # within 0.005


def test_gate_allows_for_the_noise_of_few_masks():
    """A loss inside the standard error of the per-object differences passes; a steady one does not."""
    from maskloop.engine import gate

    curve = {f"miou@{k}": 0.5 + 0.04 * k for k in range(1, 11)}
    ones = {k: [v] * 8 for k, v in curve.items()}
    base = {**curve, "noc85": 5.0, "noc90": 7.0, "box_miou": 0.8}
    base["per_object"] = {**ones, "noc85": [5.0] * 8, "noc90": [7.0] * 8, "box_miou": [0.8] * 8}
    gain = {"miou@1": 0.7, "per_object": {**base["per_object"], "miou@1": [0.69, 0.71] * 4}}
    # box and @5 differences of -0.05/+0.03 per object: mean -0.01, SE 0.0151; NoC@90 +2/-1: mean +0.5, SE 0.567
    noisy = {
        **base, **gain, "box_miou": 0.79, "miou@5": curve["miou@5"] - 0.01, "noc90": 7.5,
        "per_object": {
            **gain["per_object"],
            "box_miou": [0.75, 0.83] * 4,
            "miou@5": [curve["miou@5"] - 0.05, curve["miou@5"] + 0.03] * 4,
            "noc90": [9.0, 6.0] * 4,
        },
    }  # fmt: skip
    ok, record, _ = gate.decide(base, base, noisy, "base", force=False)
    limits = {r["metric"]: r["limit"] for r in record["rows"]}
    assert ok, record["rows"]
    assert limits["box_miou"] == limits["miou@5"] == ">= -0.015" and limits["noc90"] == "<= +0.567"
    assert limits["miou@3"] == ">= -0.005" and limits["noc85"] == "not up"
    assert not gate.decide(base, base, {**noisy, "box_miou": 0.784}, "base", force=False)[0]
    steady = {**noisy, "per_object": {**noisy["per_object"], "box_miou": [0.79] * 8}}  # every box 0.01 worse
    assert gate.decide(base, base, steady, "base", force=False)[1]["decided_by"] == "box_miou"


def test_a_successor_trained_on_more_masks_needs_only_to_hold_the_first_click():
    """Same data: a tie at one click is no gain. More accepted masks and learnt from them (mIoU@1
    beats the base beyond the noise): a tie within the noise activates, a fall beyond it still
    refuses, and every other row still applies. More masks but barely moved from the base: no tie."""
    from maskloop.engine import gate

    curve = {f"miou@{k}": 0.5 + 0.04 * k for k in range(1, 11)}
    active = {**curve, "noc85": 5.0, "noc90": 7.0, "box_miou": 0.8, "per_object": {"miou@1": [0.54] * 8}}
    base = {**active, "miou@1": 0.40, "per_object": {"miou@1": [0.38, 0.42] * 4}}
    tie = {**active, "miou@1": 0.535, "per_object": {"miou@1": [0.53, 0.54] * 4}}  # -0.005, SE 0.0019 -> 0.01
    assert not gate.decide(base, active, tie, "v0003", force=False)[0]
    ok, record, reason = gate.decide(base, active, tie, "v0003", force=False, more_data=True)
    assert ok and record["more_data"] and record["tie_allowed"], reason
    assert record["rows"][0]["limit"] == ">= -0.010 (more masks)", reason
    fell = {**tie, "miou@1": 0.525, "per_object": {"miou@1": [0.52, 0.53] * 4}}  # -0.015
    ok, record, reason = gate.decide(base, active, fell, "v0003", force=False, more_data=True)
    assert not ok and record["decided_by"] == "miou@1" and reason.startswith("refused: mIoU@1")
    worse5 = {**tie, "miou@5": curve["miou@5"] - 0.01}
    assert gate.decide(base, active, worse5, "v0003", force=False, more_data=True)[1]["decided_by"] == "miou@5"
    # a run one step from the base: more masks, but its mIoU@1 is the base's within the noise
    near_base = {**active, "miou@1": 0.53, "per_object": {"miou@1": [0.53] * 8}}
    ok, record, reason = gate.decide(near_base, active, tie, "v0003", force=False, more_data=True)
    assert not ok and record["more_data"] and not record["tie_allowed"], reason
    assert record["rows"][0]["limit"] == "> +0.010" and reason.startswith("refused: mIoU@1")


def test_three_way_split_is_disjoint_and_seeded():
    from maskloop.engine.learn import AnnotatedImage, split_images

    images = [AnnotatedImage(i, f"{i}.png", f"sha{i}", [i], [np.ones((2, 2), bool)]) for i in range(20)]
    train, select, held = split_images(images, 0.2, seed=0, selection=0.15)
    assert (len(train), len(select), len(held)) == (13, 3, 4)
    ids = [im.image_id for part in (train, select, held) for im in part]
    assert sorted(ids) == list(range(20))
    assert split_images(images, 0.2, seed=0, selection=0.15) == (train, select, held)
    assert split_images(images, 0.2, seed=1, selection=0.15)[2] != held
    few = split_images(images[:5], 0.2, seed=0, selection=0.15)  # too few for a selection split of its own
    assert len(few[1]) == 0 and len(few[2]) == 1


def test_simulation_has_sams_eleven_rounds():
    from maskloop.engine.prompt_simulation import round_plan

    rng = np.random.default_rng(0)
    plans = [round_plan(rng) for _ in range(50)]
    assert all(len(p) == 11 and p[0] == "first" and p[-1] == "mask" for p in plans)
    assert all(p.count("mask") == 2 and p.count("point") == 8 for p in plans)
    assert len({p.index("mask") for p in plans}) > 3  # the other mask-only round moves around


def test_anchor_keeps_the_decoder_near_the_base(engine_model, samples):
    def distance(anchor_weight: float) -> float:
        model = with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict())
        settings = TrainSettings(
            steps=6, lr=1e-3, warmup_steps=1, point_rounds=1, mask_only_rounds=1, anchor_weight=anchor_weight, seed=3
        )
        train_decoder(model, samples, settings)
        base = engine_model.mask_decoder.state_dict()
        return sum(float(((v - base[k]) ** 2).sum()) for k, v in model.mask_decoder.state_dict().items())

    assert distance(1e4) < 0.5 * distance(0.0)


def test_a_continued_run_keeps_to_the_base_it_is_given(engine_model, samples):
    """A run that starts from an earlier version anchors to the base weights passed as ``reference``."""
    base = engine_model.mask_decoder.state_dict()
    gen = torch.Generator().manual_seed(0)
    start = {k: v + 0.01 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v for k, v in base.items()}

    def distance(state: dict) -> float:
        return sum(float(((v - base[k]) ** 2).sum()) for k, v in state.items() if v.is_floating_point())

    model = with_mask_decoder(engine_model, start)
    settings = TrainSettings(
        steps=6, lr=1e-3, warmup_steps=1, point_rounds=1, mask_only_rounds=1, anchor_weight=1e4, seed=3
    )
    train_decoder(model, samples, settings, reference=base)
    assert distance(model.mask_decoder.state_dict()) < 0.7 * distance(start)


def test_train_versions_switch_and_rollback(texture_project):
    done = maskloop(
        "train", "--data", str(texture_project), "--steps", "4", "--eval-clicks", "5", "--holdout", "0.3", "--json"
    )  # versions, not learning, are tested here: a few steps make a version
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == "v0001" and report["compared_with"] == BASE and report["trained_from"] == BASE
    assert report["holdout"]["images"] == 2 and report["selection"]["images"] == 1 and report["train"]["images"] == 3
    assert report["selection"]["chosen_step"] in {c["step"] for c in report["selection"]["checkpoints"]}
    passing_blends = [t["weight"] for t in report["selection"]["blend_tries"] if t["passes"]]
    assert report["selection"]["blend"] in [None, *passing_blends[:1]]  # tried only when no checkpoint passed
    assert not report["selection"]["blend_tries"] or not report["selection"]["chosen_passes"]
    assert not set(report["holdout"]["annotation_ids"]) & set(report["train"]["annotation_ids"])
    for m in (report["before"], report["after"]):
        assert set(m) >= {f"miou@{k}" for k in range(1, 6)} | {"noc85", "noc90", "box_miou"} and m["objects"] > 0
    assert report["reason"].startswith(("activated", "refused"))
    assert report["gate"]["verdict"] in ("activated", "refused") and len(report["gate"]["rows"]) >= 8
    assert report["gate"]["more_data"] is False  # the base model trained on no accepted mask of the project
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
        "--continue",
        "--seed",
        "2",
        "--json",
    )
    assert forced.returncode == 0, forced.stderr
    second = json.loads(forced.stdout)
    assert second["activated"]
    # --continue: the run starts from the version that was active (v0001 if its gate passed, else the base)
    assert second["trained_from"] == second["compared_with"] == ("v0001" if report["activated"] else BASE)
    more = report["activated"] and second["train"]["masks"] > report["train"]["masks"]
    assert second["gate"]["more_data"] is more  # whether mIoU@1 need only hold
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


def test_cancelled_run_writes_nothing(texture_project, engine_model):
    from maskloop.cli.context import StoreContext
    from maskloop.engine.learn import LearnSettings, TrainingCancelled, learn
    from maskloop.server.jobs.training import training_images

    class Args:
        data, workdir, device = texture_project, None, "cpu"

    ctx = StoreContext(Args())
    versions = ctx.versions
    names, active = versions.names(), versions.active()
    events: list[dict] = []
    with pytest.raises(TrainingCancelled, match="cancelled"):
        learn(
            lambda: training_images(ctx.store.conn),
            engine_model,
            model_type="vit_t",
            base_sha256=ctx.model.checkpoint_sha256,
            versions=versions,
            embedding_of=ctx.annotated_embedding,
            settings=LearnSettings(train=TrainSettings(steps=50), eval_clicks=5, holdout=0.3),
            progress=events.append,
            should_stop=lambda: any(e.get("step") == 2 for e in events),
        )
    assert [e["step"] for e in events if e["phase"] == "training"] == [1, 2]
    assert versions.names() == names and versions.active() == active
    assert not list(versions.root.glob(".partial-*"))


def picker_split(samples) -> list:
    """A selection split of the first sample: its embedding and its targets as 512x512 image masks."""
    split = [(s.embedding.numpy(), [t[0].numpy()[:256, :256] > 0.5 for t in s.targets]) for s in samples[:1]]
    return [(e, [np.kron(m, np.ones((2, 2), bool)) for m in masks]) for e, masks in split]


def ruin(model):
    """``model`` with its mask decoder's hypernetwork MLPs negated in place (it scores far lower)."""
    with torch.no_grad():
        for p in model.mask_decoder.output_hypernetworks_mlps.parameters():
            p.mul_(-1.0)
    return model


def test_checkpoint_picker_keeps_the_best_passing_checkpoint(engine_model, samples):
    from maskloop.engine import gate
    from maskloop.engine.checkpoints import CheckpointPicker, click_protocol

    split = picker_split(samples)
    model = with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict())
    reference = gate.metrics(click_protocol(engine_model, split, 5))
    picker = CheckpointPicker(model, split, reference, max_clicks=5)
    picker(1)  # the base weights themselves: no gain, so it does not pass
    assert picker.checkpoints[0].passes is False and picker.best is not None
    first = {k: v.clone() for k, v in picker.best_state.items()}
    ruin(model)  # a ruined decoder scores lower and is not kept
    picker(2)
    assert picker.checkpoints[1].score < picker.checkpoints[0].score and picker.best.step == 1
    picker.restore_best()
    assert all(torch.equal(v, first[k]) for k, v in model.mask_decoder.state_dict().items())
    assert picker.summary()["chosen_step"] == 1


def test_blend_state_moves_float_weights_toward_the_end_and_keeps_counters():
    from maskloop.engine.checkpoints import blend_state

    start = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(3)}
    end = {"w": torch.tensor([4.0, -2.0]), "n": torch.tensor(7)}
    half = blend_state(start, end, 0.5)
    assert torch.equal(half["w"], torch.tensor([2.0, 0.0])) and int(half["n"]) == 7
    assert torch.equal(blend_state(start, end, 1.0)["w"], end["w"])
    assert torch.equal(blend_state(start, end, 0.0)["w"], start["w"])


def test_checkpoint_picker_falls_back_to_a_passing_blend_toward_the_start(engine_model, samples):
    """No checkpoint passes: ``finish`` tries blends with the start weights, largest weight first,
    keeps the first that passes, and the summary records each try."""
    from maskloop.engine import gate
    from maskloop.engine.checkpoints import CheckpointPicker, click_protocol

    split = picker_split(samples)
    ruined = ruin(with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict()))
    reference = gate.metrics(click_protocol(ruined, split, 5))  # the base weights beat this one
    model = with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict())
    start = {k: v.clone() for k, v in model.mask_decoder.state_dict().items()}
    picker = CheckpointPicker(model, split, reference, max_clicks=5, blends=(0.9, 0.0))
    ruin(model)  # the run drifts far from the start: its checkpoint is ruined too
    picker(50)
    assert picker.best is not None and picker.best.passes is False
    picker.finish()
    assert picker.blend == 0.0  # 0.9 of the ruined checkpoint fails; the start weights pass
    assert [t["weight"] for t in picker.blend_tries] == [0.9, 0.0]
    assert [t["passes"] for t in picker.blend_tries] == [False, True]
    assert all(torch.equal(v, start[k]) for k, v in model.mask_decoder.state_dict().items())
    assert picker.summary()["blend"] == 0.0 and picker.summary()["chosen_step"] == 50


def test_checkpoint_picker_tries_no_blend_when_a_checkpoint_passes(engine_model, samples):
    from maskloop.engine import gate
    from maskloop.engine.checkpoints import CheckpointPicker, click_protocol

    split = picker_split(samples)
    ruined = ruin(with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict()))
    reference = gate.metrics(click_protocol(ruined, split, 5))
    model = with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict())
    picker = CheckpointPicker(model, split, reference, max_clicks=5)
    picker(50)
    assert picker.best is not None and picker.best.passes
    picker.finish()
    assert picker.blend is None and picker.blend_tries == []


def test_a_later_checkpoint_replaces_the_kept_one_only_when_better_beyond_the_noise():
    """The picker's rule (``gate.improves``): a hair better on the mean curve is not enough (the
    20-minute run of 2026-12-04 traded step 300 for step 550, +0.002 on the selection split, and
    lost 0.08 box mIoU on the gate's split); a gain beyond the per-object noise is."""
    from maskloop.engine import gate

    ks = [f"miou@{k}" for k in range(1, 11)]

    def checkpoint(per_curve: list[float]) -> dict:
        m = {k: float(np.mean(per_curve)) for k in ks}
        return {**m, "per_object": {k: list(per_curve) for k in ks}}

    kept = checkpoint([0.7, 0.8] * 4)
    hair = checkpoint([0.68, 0.83] * 4)  # mean +0.005, per-object differences -0.02 / +0.03 (SE 0.0094)
    tiny = checkpoint([0.701, 0.801] * 4)  # every object +0.001: below the smallest step that counts
    clear = checkpoint([0.75, 0.85] * 4)  # every object +0.05
    assert not gate.improves(kept, hair)
    assert not gate.improves(kept, tiny)
    assert gate.improves(kept, clear)
    assert not gate.improves(clear, kept)


def test_checkpoint_picker_runs_out_of_patience(engine_model, samples):
    """A passing kept checkpoint that ``patience`` later ones do not beat ends the run early."""
    from maskloop.engine import gate
    from maskloop.engine.checkpoints import CheckpointPicker, click_protocol

    split = picker_split(samples)
    ruined = ruin(with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict()))
    reference = gate.metrics(click_protocol(ruined, split, 5))  # the version to beat is a ruined one
    model = with_mask_decoder(engine_model, engine_model.mask_decoder.state_dict())
    picker = CheckpointPicker(model, split, reference, max_clicks=5, patience=2)
    picker(50)
    assert picker.checkpoints[0].passes and picker.best is not None and not picker.exhausted()
    picker(100)  # the same weights: not better beyond the noise, so step 50 stays
    assert picker.best.step == 50 and not picker.exhausted()
    picker(150)
    assert picker.best.step == 50 and picker.exhausted()
    assert picker.summary()["stopped_early"] is True


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
