"""Fixtures of the data-engine tests: a synthetic scene whose true masks are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="session")
def engine_model():
    from maskloop.exporter.registry import load_sam

    torch.set_num_threads(2)
    return load_sam("vit_t")


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> tuple[Path, dict]:
    """A 480x360 photo-like scene: a red disc and a blue square on a grey ground, and its COCO boxes."""
    folder = tmp_path_factory.mktemp("scene")
    h, w = 360, 480
    yy, xx = np.mgrid[:h, :w]
    rng = np.random.default_rng(0)
    image = np.full((h, w, 3), 150, np.uint8) + rng.integers(-8, 8, (h, w, 3)).astype(np.uint8)
    disc = (xx - 140) ** 2 + (yy - 180) ** 2 < 80**2
    square = (xx >= 290) & (xx < 420) & (yy >= 110) & (yy < 240)
    image[disc] = (200, 30, 30)
    image[square] = (30, 40, 190)
    Image.fromarray(image).save(folder / "scene.png")
    masks = {"disc": disc, "square": square}
    coco = {
        "images": [{"id": 7, "file_name": "scene.png", "width": w, "height": h}],
        "categories": [{"id": 1, "name": "disc"}, {"id": 2, "name": "square"}],
        "annotations": [
            {"id": 11, "image_id": 7, "category_id": 1, "bbox": [60, 100, 160, 160], "area": 25600, "iscrowd": 0},
            {"id": 12, "image_id": 7, "category_id": 2, "bbox": [290, 110, 130, 130], "area": 16900, "iscrowd": 0},
        ],
    }
    (folder / "boxes.json").write_text(json.dumps(coco))
    np.savez(folder / "truth.npz", **masks)
    return folder, masks
