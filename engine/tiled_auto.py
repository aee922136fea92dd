"""The automatic mask generator on a large image, tile by tile (issue 24).

An image whose long side is more than ``Tiling.threshold`` is covered by the grid of
``maskloop.tiles.tile_grid`` (``tile`` x ``tile`` image pixels, neighbours sharing >= ``overlap``).
Each tile is run through ``AutomaticMaskGenerator.generate`` as an image of its own, at full
resolution, on that tile's embedding (the server's cache entry ``<sha256>@x0_y0_x1_y1``); its masks
are placed in the image frame and the tiles' masks merged by ``engine/tile_merge.py`` (cut parts
replaced by the copy a tile holds whole, or joined; duplicates from the overlap removed).

Small images do not come here: they keep the whole image's embedding, exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

from maskloop.engine.tile_merge import TileMask, merge_tiles, rle_in_image
from maskloop.tiles import Box, Tiling, tile_grid

if TYPE_CHECKING:
    from maskloop.engine.automatic import AutomaticMaskGenerator

#: (x0, y0, x1, y1) image pixels -> that region's pixels, (y1-y0)x(x1-x0)x3 uint8 RGB.
PixelsOf = Callable[[Box], npt.NDArray[np.uint8]]
#: (x0, y0, x1, y1) image pixels -> that region's embedding, [1,256,64,64] float32.
EmbeddingOf = Callable[[Box], npt.NDArray[np.float32]]


def tile_masks(records: list[dict[str, Any]], tile: Box, image_hw: tuple[int, int]) -> list[TileMask]:
    """A tile's generator records (tile frame) -> ``TileMask``s in the image frame (RLE of H x W)."""
    x0, y0 = tile[0], tile[1]
    out = []
    for r in records:
        seg = r["segmentation"]
        local = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()}).astype(bool)
        bx, by, bw, bh = r["bbox"]
        cx, cy, cw, ch = r["crop_box"]
        record = {
            **r,
            "bbox": [bx + x0, by + y0, bw, bh],
            "point_coords": [[p[0] + x0, p[1] + y0] for p in r["point_coords"]],
            "crop_box": [cx + x0, cy + y0, cw, ch],
        }
        box = (bx + x0, by + y0, bx + x0 + bw + 1, by + y0 + bh + 1)  # SAM's XYWH is of inclusive corners
        out.append(TileMask(rle_in_image(local, (x0, y0), image_hw), box, tile, float(r["predicted_iou"]), record))
    return out


def records_of(merged: list[TileMask]) -> list[dict[str, Any]]:
    """Merged masks -> generator records in the image frame (``AutomaticMaskGenerator.generate``'s format)."""
    out = []
    for m in merged:
        rle = m.rle
        record = dict(m.record)
        record["segmentation"] = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}
        record["area"] = int(mask_utils.area(rle))
        record["predicted_iou"] = m.score
        if m.parts:  # a joined mask: its box is the union's
            bx, by, bw, bh = (int(v) for v in mask_utils.toBbox(rle))
            record["bbox"] = [bx, by, max(bw - 1, 0), max(bh - 1, 0)]
            record["stability_score"] = float(min(p.record["stability_score"] for p in m.parts))
        out.append(record)
    return out


def generate_tiled(
    generator: AutomaticMaskGenerator,
    image_hw: tuple[int, int],
    tiling: Tiling,
    pixels_of: PixelsOf,
    embedding_of: EmbeddingOf,
    guard: AbstractContextManager[Any] | None = None,
) -> list[dict[str, Any]]:
    """Every object's mask of a large image (H, W), generated tile by tile and merged.

    Arguments:
      generator: runs on each tile as on an image (its crop layers, if any, are the tile's).
      tiling: the grid (``maskloop.tiles``).
      pixels_of / embedding_of: a region's pixels and its embedding (cached by the caller).
      guard: held around each tile's generation only (the server's model lock; the embeddings take it too).

    Returns:
      records as ``AutomaticMaskGenerator.generate``'s, in the image frame (RLE of H x W, ``bbox``,
      ``point_coords`` and ``crop_box`` in image pixels; ``crop_box`` is the tile's); best first.
    """
    height, width = image_hw
    found: list[TileMask] = []
    for tile in tile_grid(width, height, tiling):
        pixels, embedding = pixels_of(tile), embedding_of(tile)
        with guard if guard is not None else nullcontext():
            records = generator.generate(pixels, embedding)
        found += tile_masks(records, tile, image_hw)
    return records_of(merge_tiles(found, image_hw))
