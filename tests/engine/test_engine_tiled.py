"""Clicks on a large image decoded on its tiles (engine/tiled.py, ``evaluate --tiles on|off``), with
the real vit_t model, on small objects with exact truth (engine/small_objects.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from support import cli

from maskloop.engine.evaluate import farthest_from_boundary
from maskloop.engine.predictors import TorchDecoder
from maskloop.engine.small_objects import make_scene
from maskloop.engine.tiled import TiledDecoder
from maskloop.exporter.embedding import ImageEmbedder
from maskloop.masks import mask_iou
from maskloop.prompt import Prompt
from maskloop.tiles import Tiling

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_objects():
    """A 3000x2000 picture with 4 small objects (2 across tile edges), and its truth."""
    return make_scene(seed=1, width=3000, height=2000, sizes=(50, 90), per_size=1)


def test_a_click_on_a_small_object_is_decoded_on_its_tile_at_full_resolution(small_objects, engine_model):
    image, objects = small_objects
    hw = image.shape[:2]
    embedder = ImageEmbedder(engine_model, device="cpu")
    embed = lambda pixels: np.asarray(embedder.embed([np.ascontiguousarray(pixels)]), np.float32)  # noqa: E731
    decoder = TorchDecoder(engine_model)
    tiled = TiledDecoder(decoder, lambda r: embed(image[r[1] : r[3], r[0] : r[2]]), Tiling())
    whole = embed(image)
    assert len(objects) == 4 and sum(o.on_border for o in objects) == 2
    for obj in objects:
        x, y = farthest_from_boundary(obj.mask)
        prompt = Prompt(hw, np.array([[obj.box[0] + x, obj.box[1] + y]], np.float32), np.array([1], np.float32))
        result = tiled.decode(whole, prompt)
        assert result.masks.shape == (4, *hw) and tiled.routes[-1].kind == "tile"
        x0, y0, x1, y1 = tiled.routes[-1].region
        assert x0 <= obj.box[0] and y0 <= obj.box[1] and obj.box[2] <= x1 and obj.box[3] <= y1  # wholly inside
        on_tile = mask_iou(result.masks[result.best_index(1)], obj.full(hw))
        on_whole = decoder.decode(whole, prompt)
        assert on_tile > 0.85 and on_tile > mask_iou(on_whole.masks[on_whole.best_index(1)], obj.full(hw))


def test_evaluate_compares_tiled_and_whole_image_clicks(small_objects, tmp_path):
    from pycocotools import mask as mask_utils

    image, objects = small_objects
    Image.fromarray(image).save(tmp_path / "field.png")
    hw = image.shape[:2]
    annotations = []
    for k, obj in enumerate(objects, 1):
        rle = mask_utils.encode(np.asfortranarray(obj.full(hw).astype(np.uint8)))
        x0, y0, x1, y1 = obj.box
        seg = {"size": rle["size"], "counts": rle["counts"].decode()}
        annotations.append(
            {
                "id": k,
                "image_id": 1,
                "category_id": 1,
                "segmentation": seg,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": int(obj.mask.sum()),
                "iscrowd": 0,
            }
        )
    coco = {
        "images": [{"id": 1, "file_name": "field.png", "width": hw[1], "height": hw[0]}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "object"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(coco))
    miou = {}
    for tiles in ("on", "off"):
        args = ("--coco", str(tmp_path / "gt.json"), "--images", str(tmp_path), "--max-clicks", "1", "--json")
        done = cli.run("evaluate", *args, "--tiles", tiles)
        assert done.returncode == 0, done.stderr
        miou[tiles] = json.loads(done.stdout)["miou_at_clicks"][0]
    assert miou["on"] > 0.85 and miou["on"] > miou["off"] + 0.1, miou
