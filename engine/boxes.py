"""Boxes to masks: every box of a COCO detection file becomes a mask from a box prompt."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from maskloop.engine.dataset import resolve_image
from maskloop.engine.predictors import Decoder
from maskloop.masks import encode, measure
from maskloop.prompt import Prompt


def boxes_to_masks(
    coco_data: dict,
    images_dir: Path,
    decoder: Decoder,
    embed: Callable[[Path], tuple[np.ndarray, tuple[int, int]]],
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> dict:
    """A copy of ``coco_data`` whose annotations carry masks from their boxes.

    Ids, categories, images and every other field are kept; ``segmentation`` becomes RLE,
    ``area`` and ``bbox`` are recomputed from the mask (the input box is kept as
    ``box_prompt``), and ``predicted_iou`` is added. ``embed(path)`` gives an image's
    [1,256,64,64] embedding and its upright (H, W).
    """
    out = copy.deepcopy(coco_data)
    by_image: dict = {}
    for ann in out["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    images = {img["id"]: img for img in out["images"]}
    for image_id in progress(sorted(by_image, key=str)):
        info = images[image_id]
        embedding, hw = embed(resolve_image(images_dir, info["file_name"]))
        for ann in by_image[image_id]:
            x, y, w, h = ann["bbox"]
            prediction = decoder.decode(embedding, Prompt(hw, box_xyxy=np.array([x, y, x + w, y + h], np.float32)))
            mask = prediction.masks[0]
            rle = encode(mask)
            ann["box_prompt"] = [x, y, w, h]
            ann["segmentation"] = rle
            area, bbox = measure(rle)
            ann["area"] = float(area)
            ann["bbox"] = bbox
            ann["predicted_iou"] = float(prediction.iou[0])
            ann.setdefault("iscrowd", 0)
    return out
