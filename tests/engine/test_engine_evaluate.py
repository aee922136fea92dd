"""The click protocol: known answers from oracles, then the real model on a known scene."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from support import cli

from maskloop.engine.evaluate import evaluate, farthest_from_boundary, next_click, noc
from maskloop.exporter.decoder_runtime import Prediction


class Oracle:
    """Returns a fixed mask for every prompt (all 4 candidates), recording the clicks it got."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask, self.calls = mask, []

    def decode(self, embedding, prompt):
        self.calls.append((prompt.points_xy.copy(), prompt.labels.copy(), prompt.mask_input))
        return Prediction(
            masks=np.stack([self.mask] * 4),
            iou=np.array([0.5, 0.6, 0.9, 0.7]),
            low_res_logits=np.zeros((4, 256, 256), np.float32),
        )


def _gt():
    gt = np.zeros((60, 80), bool)
    gt[10:50, 20:60] = True
    return gt


def test_perfect_oracle_is_one_at_first_click():
    gt = _gt()
    summary = evaluate([(None, [gt])], Oracle(gt), max_clicks=5).summary()
    assert summary["miou_at_clicks"] == [1.0] * 5
    assert summary["noc85"] == 1 and summary["noc90"] == 1 and summary["box_miou"] == 1.0 and summary["objects"] == 1


def test_empty_predictor_is_zero_and_never_reaches_threshold():
    gt = _gt()
    oracle = Oracle(np.zeros_like(gt))
    summary = evaluate([(None, [gt])], oracle, max_clicks=4).summary()
    assert summary["miou_at_clicks"] == [0.0] * 4
    assert summary["noc85"] == 4 and summary["noc90"] == 4 and summary["box_miou"] == 0.0
    # every click is a foreground click (the whole object is missed), first at its centre
    assert [c[1][-1] for c in oracle.calls[:4]] == [1, 1, 1, 1]
    assert tuple(oracle.calls[0][0][0]) == (39, 29) or tuple(oracle.calls[0][0][0]) == (40, 30)


def test_first_click_farthest_from_boundary():
    gt = _gt()
    x, y = farthest_from_boundary(gt)
    assert 38 <= x <= 41 and 28 <= y <= 31


def test_next_click_targets_largest_error_with_the_right_label():
    gt = _gt()
    pred = gt.copy()
    pred[0:5, 0:80] = True  # false positive strip: 5x80 = 400 px (minus overlap)
    pred[10:50, 20:25] = False  # missed strip: 40x5 = 200 px
    (x, y), label = next_click(gt, pred)
    assert label == 0 and y < 5
    pred[0:5, :] = False
    (x, y), label = next_click(gt, pred)
    assert label == 1 and 20 <= x < 25
    assert next_click(gt, gt) is None


def test_noc():
    assert noc([0.5, 0.86, 0.91], 0.85, 20) == 2
    assert noc([0.5, 0.86, 0.91], 0.90, 20) == 3
    assert noc([0.5], 0.90, 20) == 20


def test_real_model_on_known_scene(scene, engine_model):
    from maskloop.engine.predictors import TorchDecoder
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb

    folder, masks = scene
    embedding = ImageEmbedder(engine_model).embed([load_image_rgb(folder / "scene.png")])
    summary = evaluate([(embedding, list(masks.values()))], TorchDecoder(engine_model), max_clicks=3).summary()
    print(summary)
    assert summary["miou_at_clicks"][0] >= 0.9 and summary["box_miou"] >= 0.9


def test_cli_json_on_scene(scene, tmp_path):
    folder, masks = scene
    from pycocotools import mask as mask_utils

    coco = json.loads((folder / "boxes.json").read_text())
    for ann, m in zip(coco["annotations"], masks.values()):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(coco))
    done = cli.run("evaluate", "--coco", str(gt), "--images", str(folder), "--max-clicks", "2", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert set(summary) >= {"miou_at_clicks", "noc85", "noc90", "box_miou", "objects"}
    assert summary["objects"] == 2 and len(summary["miou_at_clicks"]) == 2 and summary["miou_at_clicks"][0] > 0.9


def test_cli_bad_input_is_one_line(tmp_path):
    """The console script's own process: exit status 2 and one line on stderr."""
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = subprocess.run(
        [sys.executable, "-m", "maskloop.cli", "evaluate", "--coco", str(bad), "--images", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "is not JSON" in done.stderr and done.stderr.count("\n") == 1
