"""``auto`` on a large image runs tile by tile (engine/tiled_auto.py): objects on tile edges and on a
corner where four tiles meet are found once each, whole, with the real vit_t model and store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from support import cli

from maskloop.engine.small_objects import PastedObject, place_scene
from maskloop.tiles import Tiling, tile_grid

pytestmark = pytest.mark.slow

W, H = 2400, 1600  # tiles x: 0-1024, 688-1712, 1376-2400; y: 0-1024, 576-1600
GRID = ("--points-per-side", "16")
PLACEMENTS = [
    ((1024, 300), 110, True),  # across the first tile's right edge
    ((1712, 1250), 110, True),  # across the middle column's right edge
    ((420, 1024), 110, True),  # across the top row's bottom edge
    ((1376, 576), 110, True),  # on a corner where four tiles meet
    ((330, 330), 100, False),  # inside one tile
    ((2050, 1300), 100, False),  # inside the overlap of two tiles
]


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A folder with one 2400x1600 picture (tiled at the default threshold) and its objects' truth."""
    folder = tmp_path_factory.mktemp("field")
    image, objects = place_scene(3, W, H, PLACEMENTS)
    Image.fromarray(image).save(folder / "field.png")
    return folder, objects


def _truth(obj: PastedObject) -> dict:
    rle: dict = mask_utils.encode(np.asfortranarray(obj.full((H, W)).astype(np.uint8)))
    return rle


def _check_each_found_once(coco: dict, objects: list[PastedObject]) -> None:
    rles = [
        {"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()} for a in coco["annotations"]
    ]
    assert rles, "no masks"
    for k, obj in enumerate(objects):
        truth = _truth(obj)
        iou = np.asarray(mask_utils.iou(rles, [truth], [0])).reshape(-1)
        inside = np.asarray(mask_utils.area([mask_utils.merge([r, truth], intersect=True) for r in rles]), float)
        area = np.asarray(mask_utils.area(rles), float)
        of_mask, of_truth = inside / area, inside / mask_utils.area(truth)
        assert iou.max() >= 0.8, (k, PLACEMENTS[k], iou.max())
        assert (iou > 0.5).sum() == 1, (k, PLACEMENTS[k], sorted(iou)[-3:])  # never twice
        # A part: a mask lying in the object (80 % of it) that covers 20-80 % of it (a half from a cut tile).
        parts = (of_mask >= 0.8) & (of_truth >= 0.2) & (of_truth < 0.8)
        assert not parts.any(), (k, PLACEMENTS[k], of_truth[parts])


def test_auto_finds_objects_on_tile_edges_once_and_whole(field, tmp_path):
    folder, objects = field
    assert Tiling().is_tiled(W, H) and len(tile_grid(W, H, Tiling())) == 6
    out = tmp_path / "auto.json"
    done = cli.run("auto", "--data", str(folder), *GRID, "--out", str(out))
    assert done.returncode == 0, done.stderr
    coco = json.loads(out.read_text())
    _check_each_found_once(coco, objects)
    tiles = tile_grid(W, H, Tiling())
    # The tiles' embeddings are cached under the image-tile key; the whole image was never embedded.
    cached = sorted(p.name for p in (folder / ".maskloop" / "embeddings").rglob("*.npy"))
    assert len(cached) == len(tiles) and all("@" in name for name in cached), cached
