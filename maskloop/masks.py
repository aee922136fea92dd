"""COCO masks: validate, canonicalise and measure RLE with pycocotools.

Every mask maskloop stores is COCO *compressed* RLE of an HxW image (as shown, EXIF applied):
``{"size": [h, w], "counts": "<str>"}``, runs in column-major (Fortran) order starting with a
run of 0s. ``area`` and ``bbox`` ([x, y, w, h], 0-indexed) always come from pycocotools.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from maskloop.validate import brief


class MaskError(ValueError):
    """A segmentation that cannot be stored; the message says why, in one line."""


def compressed_runs(counts: str) -> list[int]:
    """Run lengths of a COCO compressed-RLE ``counts`` string (pycocotools' ``rleFrString``).

    Written out because pycocotools decodes a string whose runs do not cover the image into
    uninitialised memory instead of failing; this lets us check the runs first.

    Raises:
      MaskError: a character outside the alphabet or a truncated number.
    """
    runs: list[int] = []
    pos, n = 0, len(counts)
    while pos < n:
        value, shift, more = 0, 0, True
        while more:
            if pos >= n:
                raise MaskError("RLE counts string ends in the middle of a number")
            c = ord(counts[pos]) - 48
            if not 0 <= c < 64:
                raise MaskError(f"RLE counts string has an invalid character {counts[pos]!r} at position {pos}")
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and c & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def _check_size(size: Any, height: int, width: int) -> None:
    if not (
        isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
    ):
        raise MaskError(f'RLE "size" must be [height, width] as two integers, got {brief(size)}')
    if size != [height, width]:
        raise MaskError(f"RLE size {size} does not match the image, which is [{height}, {width}] (height, width)")


def _check_runs(runs: list[int], height: int, width: int) -> None:
    if any(r < 0 for r in runs):
        raise MaskError("RLE counts contain a negative run length")
    total = sum(runs)
    if total != height * width:
        raise MaskError(f"RLE runs cover {total} pixels, but a {height}x{width} image has {height * width}")


def encode(mask: np.ndarray) -> dict:
    """HxW mask (any dtype; nonzero = inside) -> compressed RLE ``{"size", "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8, copy=False)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode(rle: dict) -> np.ndarray:
    """Compressed RLE (counts as str or bytes) -> HxW uint8 mask of 0/1."""
    counts = rle["counts"]
    mask: np.ndarray = mask_utils.decode(
        {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    )
    return mask


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean HxW masks of one shape (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def measure(rle: dict) -> tuple[int, list[float]]:
    """(area in pixels, bbox [x, y, w, h]) of a compressed RLE, from pycocotools."""
    obj = {"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}
    return int(mask_utils.area(obj)), [float(v) for v in mask_utils.toBbox(obj)]


def canonical_rle(segmentation: Any, height: int, width: int) -> dict:
    """Validate an RLE for an image of ``height`` x ``width`` and return its canonical form.

    Arguments:
      segmentation: ``{"size": [h, w], "counts": str}`` (compressed) or ``counts`` as a list of
        ints (uncompressed, as COCO's ``iscrowd`` annotations have).
    Returns:
      compressed RLE dict with ``counts`` as str, re-encoded by pycocotools.
    Raises:
      MaskError: wrong shape, size mismatch, runs that do not cover the image, or an empty mask.
    """
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise MaskError('segmentation must be an RLE object {"size": [height, width], "counts": "..."}')
    _check_size(segmentation["size"], height, width)
    counts = segmentation["counts"]
    if isinstance(counts, str):
        runs = compressed_runs(counts)
    elif isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
        runs = counts
    else:
        raise MaskError("RLE counts must be a COCO compressed string or a list of integers")
    _check_runs(runs, height, width)
    if isinstance(counts, list):
        rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        mask = mask_utils.decode(rle)
    else:
        mask = mask_utils.decode({"size": [height, width], "counts": counts.encode("ascii")})
    if not mask.any():
        raise MaskError("the mask is empty (no pixel set)")
    return encode(mask)


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range
        return False


def polygons_to_rle(polygons: Any, height: int, width: int) -> dict:
    """COCO polygons ``[[x0, y0, x1, y1, ...], ...]`` (pixel-corner frame) -> one compressed RLE.

    Raises:
      MaskError: not a list of coordinate lists, a ring with fewer than 3 points, a coordinate
        that is not a finite number or lies more than one image size outside the image, or a
        polygon set that covers no pixel of the image.
    """
    if not isinstance(polygons, list) or not polygons:
        raise MaskError("polygon segmentation must be a non-empty list of [x0, y0, x1, y1, ...] lists")
    for i, poly in enumerate(polygons):
        if not isinstance(poly, list):
            raise MaskError(f"polygon {i} is not a list of coordinates")
        if len(poly) < 6 or len(poly) % 2:
            raise MaskError(f"polygon {i} has {len(poly)} coordinates; a polygon needs an even number, at least 6")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in poly):
            raise MaskError(f"polygon {i} has a coordinate that is not a finite number")
        xs, ys = poly[0::2], poly[1::2]
        # pycocotools rasterises the whole outline, wherever it lies: 1e9 crashes it, 1e7 costs a GB
        if min(xs) < -width or max(xs) > 2 * width or min(ys) < -height or max(ys) > 2 * height:
            raise MaskError(
                f"polygon {i} has a point far outside the {width}x{height} image "
                f"(x from {-width} to {2 * width}, y from {-height} to {2 * height} are accepted)"
            )
    rle = mask_utils.merge(mask_utils.frPyObjects([[float(v) for v in p] for p in polygons], height, width))
    mask = mask_utils.decode(rle)
    if not mask.any():
        raise MaskError("the polygons cover no pixel of the image")
    return encode(mask)


def coco_segmentation_to_rle(segmentation: Any, height: int, width: int) -> dict:
    """Any COCO segmentation (polygons, compressed or uncompressed RLE) -> canonical compressed RLE."""
    if isinstance(segmentation, list):
        return polygons_to_rle(segmentation, height, width)
    if isinstance(segmentation, dict):
        return canonical_rle(segmentation, height, width)
    raise MaskError("segmentation must be a list of polygons or an RLE object")
