"""Average recall of automatic proposals (``evaluate-proposals``): known answers, then the CLI on a scene."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from support import cli

from maskloop.engine.dataset import load_coco
from maskloop.engine.proposal_recall import average_recall, proposal_recall


def _rle(m: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def _box(x0: int, y0: int, x1: int, y1: int, shape=(60, 80)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def _coco(tmp_path):
    a, b = _box(5, 5, 35, 35), _box(45, 10, 75, 50)
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(tmp_path / "x.png")
    data = {
        "images": [{"id": 1, "file_name": "x.png", "width": 80, "height": 60}],
        "categories": [{"id": 0, "name": "_background_"}, {"id": 3, "name": "thing"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 3,
                "segmentation": _rle(a),
                "area": int(a.sum()),
                "iscrowd": 0,
                "bbox": [5, 5, 30, 30],
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 3,
                "segmentation": _rle(b),
                "area": int(b.sum()),
                "iscrowd": 0,
                "bbox": [45, 10, 30, 40],
            },
            {
                "id": 3,
                "image_id": 1,
                "category_id": 0,
                "segmentation": _rle(~(a | b)),
                "area": 1,
                "iscrowd": 0,
                "bbox": [0, 0, 80, 60],
            },
        ],
    }
    (tmp_path / "gt.json").write_text(json.dumps(data))
    return load_coco(tmp_path / "gt.json"), a, b


class Fixed:
    """A generator that proposes fixed masks with fixed scores."""

    def __init__(self, masks: list[tuple[np.ndarray, float]]) -> None:
        self.masks = masks

    def generate(self, image, embedding=None):
        return [{"segmentation": _rle(m), "predicted_iou": s} for m, s in self.masks]


def test_perfect_proposals_recall_everything_background_is_not_an_object(tmp_path):
    coco, a, b = _coco(tmp_path)
    report = proposal_recall(coco, tmp_path, Fixed([(a, 0.9), (b, 0.8)]), None)
    assert report["objects"] == 2 and report["images"] == 1 and report["proposals_per_image"] == 2
    assert report["ar@10"] == report["ar@100"] == report["ar@1000"] == 1.0


def test_one_object_missed_and_an_imprecise_one(tmp_path):
    coco, a, b = _coco(tmp_path)
    loose = _box(5, 5, 35, 41)  # IoU 30*30 / 30*36 = 0.833 with a: found at 0.5..0.8, not above
    report = proposal_recall(coco, tmp_path, Fixed([(loose, 0.9)]), None)
    assert report["recall50@10"] == 0.5
    assert abs(report["ar@10"] - 0.5 * 7 / 10) < 1e-3  # thresholds 0.5, 0.55, ..., 0.8 of ten
    assert average_recall(coco, [], [1])["ar@10"] == 0.0


def test_ranking_decides_what_counts_at_ten(tmp_path):
    coco, a, b = _coco(tmp_path)
    noise = [(_box(0, 0, 3, 3), 0.99)] * 10  # ten better-scored useless masks push the objects past 10
    report = proposal_recall(coco, tmp_path, Fixed(noise + [(a, 0.5), (b, 0.4)]), None)
    assert report["ar@10"] == 0.0 and report["ar@100"] == 1.0


def test_cli_on_scene(scene, tmp_path):
    folder, masks = scene
    coco = json.loads((folder / "boxes.json").read_text())
    for ann, m in zip(coco["annotations"], masks.values()):
        ann["segmentation"] = _rle(m)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(coco))
    done = cli.run("evaluate-proposals", "--coco", str(gt), "--images", str(folder), "--points-per-side", "8", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["objects"] == 2 and report["points_per_side"] == 8
    assert report["ar@1000"] >= report["ar@100"] >= report["ar@10"] and report["ar@1000"] >= 0.5
    table = cli.run(
        "evaluate-proposals",
        "--coco",
        str(gt),
        "--images",
        str(folder),
        "--points-per-side",
        "4",
        "--pred-iou-thresh",
        "0.5",
        "--stability-thresh",
        "0.5",
    )
    assert table.returncode == 0, table.stderr
    assert "AR@10 " in table.stdout and "AR@1000" in table.stdout and "predicted IoU > 0.5" in table.stdout
