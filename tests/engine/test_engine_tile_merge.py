"""The merge of tiles' automatic masks (engine/tile_merge.py) on hand-made masks: no model."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from maskloop.engine.tile_merge import TileMask, is_cut, merge_tiles, rle_in_image
from maskloop.tiles import Box

HW = (1600, 2400)
LEFT: Box = (0, 0, 1024, 1024)
MIDDLE: Box = (688, 0, 1712, 1024)
BOTTOM: Box = (688, 576, 1712, 1600)


def _disc(cx: int, cy: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[: HW[0], : HW[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 < r * r


def _mask(full: np.ndarray, tile: Box, score: float) -> TileMask:
    """What ``tile``'s generator would report of ``full``: the part inside the tile."""
    x0, y0, x1, y1 = tile
    local = full[y0:y1, x0:x1]
    ys, xs = np.nonzero(local)
    box = (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1)
    record = {"predicted_iou": score, "stability_score": 0.97, "bbox": [], "point_coords": [[0, 0]], "crop_box": []}
    return TileMask(rle_in_image(local, (x0, y0), HW), box, tile, score, record)


def _dense(m: TileMask) -> np.ndarray:
    return mask_utils.decode(m.rle).astype(bool)


def test_rle_in_image_equals_encoding_the_placed_mask():
    rng = np.random.default_rng(0)
    for tile in (LEFT, MIDDLE, BOTTOM, (0, 0, 2400, 1600)):
        x0, y0, x1, y1 = tile
        local = rng.random((y1 - y0, x1 - x0)) < 0.3
        local[:, 5] = True  # a full column: runs that cross columns when the tile is the image's height
        full = np.zeros(HW, bool)
        full[y0:y1, x0:x1] = local
        expected = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
        assert rle_in_image(local, (x0, y0), HW)["counts"] == expected["counts"]


def test_a_cut_edge_is_one_inside_the_image():
    assert is_cut((1000, 100, 1024, 200), LEFT, HW)  # reaches the right edge, which cuts the image
    assert not is_cut((0, 0, 100, 100), LEFT, HW)  # the image's own corner
    assert not is_cut((500, 500, 600, 600), LEFT, HW)


def test_the_copy_a_tile_holds_whole_replaces_the_half_and_duplicates_go():
    on_edge = _disc(1024, 300, 60)  # cut by LEFT's right edge, whole in MIDDLE
    inside = _disc(850, 800, 50)  # in LEFT and MIDDLE: reported by both
    masks = [_mask(on_edge, LEFT, 0.99), _mask(on_edge, MIDDLE, 0.95)]
    masks += [_mask(inside, LEFT, 0.93), _mask(inside, MIDDLE, 0.96)]
    merged = merge_tiles(masks, HW)
    assert len(merged) == 2
    assert all(m.tile == MIDDLE for m in merged)  # the whole copy of on_edge; the better-scored one of inside
    assert {_dense(m).sum() for m in merged} == {on_edge.sum(), inside.sum()}
    assert any(np.array_equal(_dense(m), on_edge) for m in merged)


def test_parts_no_tile_holds_whole_are_joined():
    wide = np.zeros(HW, bool)
    wide[300:400, 400:1500] = True  # 1100 px wide: no tile holds it
    parts = [_mask(wide, LEFT, 0.9), _mask(wide, MIDDLE, 0.92)]
    merged = merge_tiles(parts, HW)
    assert len(merged) == 1 and len(merged[0].parts) == 2
    assert np.array_equal(_dense(merged[0]), wide)
