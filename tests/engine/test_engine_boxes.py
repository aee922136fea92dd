"""boxes-to-masks keeps ids and categories and finds the known masks."""

from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from support import cli


def test_boxes_to_masks_cli(scene, tmp_path):
    folder, truth = scene
    out = tmp_path / "masks.json"
    done = cli.run("boxes-to-masks", "--coco", str(folder / "boxes.json"), "--data", str(folder), "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert [a["id"] for a in result["annotations"]] == [11, 12]
    assert [a["category_id"] for a in result["annotations"]] == [1, 2]
    coco = COCO(str(out))
    for ann, name in zip(result["annotations"], ("disc", "square")):
        mask = coco.annToMask(ann).astype(bool)
        iou = np.logical_and(mask, truth[name]).sum() / np.logical_or(mask, truth[name]).sum()
        print(name, iou)
        assert iou >= 0.95
        assert ann["area"] == float(mask_utils.area(ann["segmentation"]))
        assert ann["box_prompt"] and 0 <= ann["predicted_iou"] <= 1.2


def test_boxes_to_masks_rejects_bad_box(scene, tmp_path):
    folder, _ = scene
    coco = json.loads((folder / "boxes.json").read_text())
    coco["annotations"][1]["bbox"] = [1, 2, 0, 5]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    done = cli.run("boxes-to-masks", "--coco", str(bad), "--data", str(folder), "--out", str(tmp_path / "o.json"))
    assert done.returncode == 2 and "annotation 1 (id 12) has no usable bbox" in done.stderr
