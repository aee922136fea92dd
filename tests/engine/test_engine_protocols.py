"""The click protocols (centre and random sampling) and the oracle curve (issue 26)."""

from __future__ import annotations

import json

import numpy as np
from support import cli

from maskloop.engine.evaluate import evaluate, evaluate_protocols, next_click, uniform_point
from maskloop.exporter.decoder_runtime import Prediction


class ClickDiscs:
    """A decoder whose masks follow the clicks: discs of radius r (single output), r/2, r, 2r (the three
    ambiguity candidates) around foreground points, minus the same discs around background points.
    Its predicted IoU prefers the smallest candidate, so the model's choice is not always the best."""

    def __init__(self, shape: tuple[int, int], r: float = 12.0) -> None:
        self.shape, self.r = shape, r

    def decode(self, embedding, prompt):
        yy, xx = np.mgrid[: self.shape[0], : self.shape[1]]
        masks = []
        for radius in (self.r, self.r / 2, self.r, 2 * self.r):
            m = np.zeros(self.shape, bool)
            for (x, y), label in zip(prompt.points_xy, prompt.labels):
                disc = (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
                m = m | disc if label == 1 else m & ~disc
            masks.append(m)
        return Prediction(
            masks=np.stack(masks),
            iou=np.array([0.5, 0.9, 0.6, 0.3]),
            low_res_logits=np.zeros((4, 256, 256), np.float32),
        )


def _gt():
    gt = np.zeros((60, 80), bool)
    gt[8:52, 10:70] = True
    gt[30:52, 40:70] = False  # an L shape: the centre and a random pixel give different masks
    return gt


def _curve(sampling, seed=0, oracle=False):
    gt = _gt()
    return evaluate([(None, [gt])], ClickDiscs(gt.shape), max_clicks=6, sampling=sampling, seed=seed, oracle=oracle)


def test_same_seed_repeats_different_seeds_differ_centre_differs():
    one, again, two = (_curve("random", s).summary() for s in (1, 1, 2))
    centre = _curve("center").summary()
    assert one["miou_at_clicks"] == again["miou_at_clicks"]
    assert one["miou_at_clicks"] != two["miou_at_clicks"]
    assert centre["miou_at_clicks"] != one["miou_at_clicks"]
    assert (
        one["sampling"] == "random" and one["seed"] == 1 and centre["sampling"] == "center" and centre["seed"] is None
    )


def test_random_clicks_lie_in_the_region_with_the_right_label():
    gt = _gt()
    rng = np.random.default_rng(3)
    points = {uniform_point(gt, rng) for _ in range(50)}
    assert len(points) > 40 and all(gt[y, x] for x, y in points)
    pred = gt.copy()
    pred[0:5, :] = True  # a false-positive strip, the largest error
    for _ in range(20):
        (x, y), label = next_click(gt, pred, rng)
        assert label == 0 and y < 5
    assert next_click(gt, gt, rng) is None


def test_oracle_is_never_below_the_model_and_above_it_somewhere():
    for sampling, seed in (("center", 0), ("random", 1), ("random", 2)):
        result = _curve(sampling, seed, oracle=True)
        for obj in result.objects:
            assert obj.oracle_ious is not None and len(obj.oracle_ious) == len(obj.ious) == 6
            assert all(o >= m for o, m in zip(obj.oracle_ious, obj.ious))
        summary = result.summary()
        assert all(o >= m for o, m in zip(summary["oracle"]["miou_at_clicks"], summary["miou_at_clicks"]))
    # after one click the model takes the r/2 disc (highest predicted IoU); the oracle the 2r one
    first = _curve("center", oracle=True).summary()
    assert first["oracle"]["miou_at_clicks"][0] > first["miou_at_clicks"][0]
    assert "oracle" not in _curve("center").summary()


def test_both_protocols_on_one_pass():
    gt = _gt()
    results = evaluate_protocols([(None, [gt, gt])], ClickDiscs(gt.shape), ("center", "random"), max_clicks=3, seed=5)
    assert set(results) == {"center", "random"} and all(len(r.objects) == 2 for r in results.values())


def test_cli_both_protocols_oracle_and_plot_on_scene(scene, tmp_path):
    folder, masks = scene
    from pycocotools import mask as mask_utils

    coco = json.loads((folder / "boxes.json").read_text())
    for ann, m in zip(coco["annotations"], masks.values()):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(coco))
    plot = tmp_path / "curves.png"
    args = ["evaluate", "--coco", str(gt), "--images", str(folder), "--max-clicks", "2"]
    done = cli.run(*args, "--sampling", "both", "--seed", "1", "--oracle", "--plot", str(plot), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert set(summary["protocols"]) == {"center", "random"} and summary["sampling"] == "center"
    for curve in summary["protocols"].values():
        assert len(curve["miou_at_clicks"]) == 2 and curve["objects"] == 2
        assert all(o >= m for o, m in zip(curve["oracle"]["miou_at_clicks"], curve["miou_at_clicks"]))
    assert summary["protocols"]["random"]["seed"] == 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = cli.run(*args, "--sampling", "random", "--seed", "2", "--oracle")
    assert table.returncode == 0, table.stderr
    assert "random (seed 2) oracle" in table.stdout and "mIoU@1" in table.stdout and "NoC@90" in table.stdout


def test_cli_curves_per_model_version(engine_model, scene, tmp_path):
    """``--data P --model-version all``: every version of the project evaluated, each its own curve
    (a fine-tuned version's differ from base's), in the JSON, the table and one plot."""
    from engine_fixtures import activate_noisy_version
    from pycocotools import mask as mask_utils

    folder, masks = scene
    project = tmp_path / "project"
    project.mkdir()
    version = activate_noisy_version(engine_model, project / ".maskloop" / "models")
    coco = json.loads((folder / "boxes.json").read_text())
    for ann, m in zip(coco["annotations"], masks.values()):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        ann["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(coco))
    plot = tmp_path / "versions.png"
    args = ["evaluate", "--coco", str(gt), "--images", str(folder), "--max-clicks", "2", "--data", str(project)]
    done = cli.run(*args, "--model-version", "all", "--plot", str(plot), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert list(summary["versions"]) == ["base", version]
    curves = [summary["versions"][v]["center"]["miou_at_clicks"] for v in ("base", version)]
    assert curves[0] != curves[1]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = cli.run(*args, "--model-version", f"base,{version}")
    assert table.returncode == 0 and f"model version {version}:" in table.stdout, table.stderr
