"""Merging the automatic masks of a large image's tiles into one set: no object twice, none in halves.

Each tile (``maskloop.tiles.tile_grid``; they overlap by at least ``overlap`` = 256 px) is run
through the generator as an image of its own, so an object across a tile edge comes back as a
part from one tile and, when it is at most ~``overlap`` px, whole from the neighbour. The rule:

1. A mask whose box reaches within ``EDGE_TOLERANCE`` px of a tile edge that cuts the image (an
   edge on the image's own border cuts nothing) is **cut**; the others are **whole**.
2. Whole masks: duplicates from the overlap (mask IoU >= ``DUPLICATE_IOU`` at full resolution with
   a better-scored mask of *another* tile) are dropped; masks of one tile are the generator's own
   decision and never suppress each other.
3. A cut mask is dropped when a kept whole mask of another tile, clipped to the cut mask's tile,
   matches it (IoU >= ``PART_IOU``): that tile holds the object whole.
4. Cut masks left (objects no tile holds whole, e.g. wider than the overlap) are joined: two parts
   from different tiles are one object when they agree on the two tiles' shared area (IoU >=
   ``PART_IOU`` there); a joined group takes at most one part per tile, and its union is the mask.
5. A joined mask that duplicates a kept one (IoU >= ``DUPLICATE_IOU``) is dropped.

Frames: a ``TileMask``'s RLE is in the **image** frame (full resolution, COCO RLE of H x W), but is
built from the tile-local mask without a dense H x W array (``rle_in_image``), and every test above is
an RLE operation (pycocotools), so memory grows with the masks' outlines, not the image's area.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

from maskloop.tiles import Box

#: A mask's box this close (px) to a tile edge that cuts the image counts as cut by it.
EDGE_TOLERANCE = 8
#: Masks of different tiles at this full-resolution IoU or more are one object seen twice.
DUPLICATE_IOU = 0.5
#: A part agrees with another mask on their shared area at this IoU or more.
PART_IOU = 0.5

Rle = dict[str, Any]


@dataclass
class TileMask:
    """One generator mask of one tile, placed in the image.

    rle: COCO RLE (counts bytes) of the H x W image; box: (x0, y0, x1, y1) image pixels, half-open;
    tile: the tile's (x0, y0, x1, y1); score: predicted IoU; record: the generator's record, moved
    to the image frame (``segmentation`` is set when the merged set is written).
    """

    rle: Rle
    box: Box
    tile: Box
    score: float
    record: dict[str, Any]
    cut: bool = False
    parts: list[TileMask] = field(default_factory=list)


def rle_in_image(local: npt.NDArray[np.bool_], offset: tuple[int, int], image_hw: tuple[int, int]) -> Rle:
    """A region-frame mask (h, w) bool at ``offset`` (x0, y0) -> the COCO RLE (counts bytes) of the
    H x W image, built from its runs (no H x W array)."""
    height, width = image_hw
    x0, y0 = offset
    h, w = local.shape
    padded = np.zeros((h + 2, w), np.int8)
    padded[1:-1] = local
    cols, rows = np.nonzero(np.diff(padded, axis=0).T)  # column-major order: runs start / end rows
    bounds = (cols.astype(np.int64) + x0) * height + y0 + rows
    # A run ending at a column's last row and the next starting at the next column's first one are one run.
    if len(bounds) > 1:
        joined = np.zeros(len(bounds), bool)
        same = np.nonzero(bounds[1:] == bounds[:-1])[0]
        joined[same] = joined[same + 1] = True
        bounds = bounds[~joined]
    counts = np.diff(np.concatenate([[0], bounds, [height * width]])).tolist()
    rle: Rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    return rle


def is_cut(box: Box, tile: Box, image_hw: tuple[int, int], tolerance: int = EDGE_TOLERANCE) -> bool:
    """Whether a mask's ``box`` (image pixels, half-open) reaches a tile edge that cuts the image."""
    height, width = image_hw
    x0, y0, x1, y1 = box
    tx0, ty0, tx1, ty1 = tile
    return (
        (tx0 > 0 and x0 - tx0 <= tolerance)
        or (ty0 > 0 and y0 - ty0 <= tolerance)
        or (tx1 < width and tx1 - x1 <= tolerance)
        or (ty1 < height and ty1 - y1 <= tolerance)
    )


def _rect(box: Box, image_hw: tuple[int, int]) -> Rle:
    x0, y0, x1, y1 = box
    rle: Rle = mask_utils.frPyObjects(np.array([[x0, y0, x1 - x0, y1 - y0]], np.float64), *image_hw)[0]
    return rle


def _clip(rle: Rle, region: Rle) -> Rle:
    clipped: Rle = mask_utils.merge([rle, region], intersect=True)
    return clipped


def _iou(a: Rle, b: Rle) -> float:
    return float(np.asarray(mask_utils.iou([a], [b], [0])).reshape(-1)[0])


def _shared(a: Box, b: Box) -> Box | None:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def _boxes_meet(a: Box, b: Box) -> bool:
    return _shared(a, b) is not None


def _duplicate_of(mask: TileMask, kept: list[TileMask], other_tile_only: bool) -> bool:
    for k in kept:
        if other_tile_only and k.tile == mask.tile:
            continue
        if _boxes_meet(mask.box, k.box) and _iou(mask.rle, k.rle) >= DUPLICATE_IOU:
            return True
    return False


def merge_tiles(masks: list[TileMask], image_hw: tuple[int, int]) -> list[TileMask]:
    """The merged set of every tile's masks (see the module's docstring), best score first."""
    for m in masks:
        m.cut = is_cut(m.box, m.tile, image_hw)
    order = sorted(masks, key=lambda m: -m.score)
    kept: list[TileMask] = []
    for m in order:  # 2: whole masks, duplicates across tiles dropped
        if not m.cut and not _duplicate_of(m, kept, other_tile_only=True):
            kept.append(m)
    rects: dict[Box, Rle] = {}

    def rect(box: Box) -> Rle:
        if box not in rects:
            rects[box] = _rect(box, image_hw)
        return rects[box]

    parts = []
    for m in order:  # 3: cut masks some tile holds whole
        if not m.cut:
            continue
        own = rect(m.tile)
        held = any(
            w.tile != m.tile and _boxes_meet(m.box, w.box) and _iou(m.rle, _clip(w.rle, own)) >= PART_IOU for w in kept
        )
        if not held:
            parts.append(m)
    for joined in _join(parts, rect):  # 4 and 5
        if not _duplicate_of(joined, kept, other_tile_only=False):
            kept.append(joined)
    return sorted(kept, key=lambda m: -m.score)


def _join(parts: list[TileMask], rect: Any) -> list[TileMask]:
    """Groups of cut parts that agree on their tiles' shared areas, each as one ``TileMask`` (union)."""
    pairs = []
    for i, a in enumerate(parts):
        for j in range(i + 1, len(parts)):
            b = parts[j]
            shared = _shared(a.tile, b.tile)
            if a.tile == b.tile or shared is None or not _boxes_meet(a.box, b.box):
                continue
            area = rect(shared)
            iou = _iou(_clip(a.rle, area), _clip(b.rle, area))
            if iou >= PART_IOU:
                pairs.append((iou, i, j))
    group = list(range(len(parts)))
    members: dict[int, list[int]] = {i: [i] for i in range(len(parts))}
    for _, i, j in sorted(pairs, reverse=True):  # best agreement first; one part per tile in a group
        gi, gj = group[i], group[j]
        if gi == gj or {parts[k].tile for k in members[gi]} & {parts[k].tile for k in members[gj]}:
            continue
        for k in members[gj]:
            group[k] = gi
        members[gi] += members.pop(gj)
    out = []
    for ids in members.values():
        if len(ids) == 1:
            out.append(parts[ids[0]])
            continue
        group_parts = [parts[k] for k in ids]
        best = max(group_parts, key=lambda p: p.score)
        rle: Rle = mask_utils.merge([p.rle for p in group_parts], intersect=False)
        bx, by, bw, bh = (int(v) for v in mask_utils.toBbox(rle))
        out.append(
            TileMask(
                rle,
                (bx, by, bx + bw, by + bh),
                best.tile,
                float(np.mean([p.score for p in group_parts])),
                dict(best.record),
                cut=True,
                parts=group_parts,
            )
        )
    return out
