"""A mask as editable polygon rings and back (issue 23's polygon editing).

``mask_rings``: every outline of a mask, outer rings and holes, with vertices on pixel corners
(OpenCV's contours of the mask upsampled 2x, as ``coco.mask_to_polygons`` does, so that
pycocotools' rasteriser fills exactly the original pixels), simplified by Douglas-Peucker
(``cv2.approxPolyDP``) at ``tolerance`` pixels. ``rings_to_mask``: the outer rings filled, the
holes cut out again, by pycocotools' rasteriser (the COCO polygon convention). At tolerance 0 the
round trip gives the mask back.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

import cv2
import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

from maskloop.errors import UserError

MAX_RINGS = 10_000
MAX_VERTICES = 1_000_000
MAX_TOLERANCE = 50.0


class Ring(TypedDict):
    """One closed outline: ``points`` x0, y0, x1, y1, … (image pixels, on pixel corners);
    ``hole``: it cuts out of the ring around it."""

    points: list[float]
    hole: bool


def traced_rings(mask: npt.NDArray[np.uint8]) -> list[tuple[npt.NDArray[Any], bool]]:
    """H x W mask -> every outline as ``(N x 2 vertices on pixel corners, is_hole)``, unsimplified.

    OpenCV traces the centres of boundary pixels, half a pixel inside the true outline. On the
    mask upsampled 2x, a boundary pixel with an even coordinate is the first half of an original
    pixel (its left/top edge) and an odd one the second half (its right/bottom edge), so
    ``ceil(c / 2)`` puts every vertex on the original pixel corner, and pycocotools' rasteriser
    fills exactly the original pixels.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return []
    x0, y0 = int(xs.min()), int(ys.min())
    crop = np.ascontiguousarray(mask[y0 : int(ys.max()) + 1, x0 : int(xs.max()) + 1], dtype=np.uint8)
    up = cv2.resize(crop, (crop.shape[1] * 2, crop.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    up = cv2.copyMakeBorder(up, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0] if hierarchy is not None else [], strict=False):
        points = np.ceil((contour.reshape(-1, 2) - 1) / 2) + [x0, y0]  # undo the border, then to corners
        keep = np.ones(len(points), bool)
        keep[1:] = (np.diff(points, axis=0) != 0).any(axis=1)
        points = points[keep]
        if len(points) > 1 and (points[0] == points[-1]).all():
            points = points[:-1]
        out.append((points, bool(parent >= 0)))  # a contour with a parent is a hole
    return out


def simplified(points: npt.NDArray[Any], tolerance: float) -> list[float] | None:
    """A traced ring simplified by Douglas-Peucker at ``tolerance`` px, flat; None under 3 vertices."""
    if tolerance > 0 and len(points) >= 3:
        points = cv2.approxPolyDP(points.astype(np.float32).reshape(-1, 1, 2), tolerance, True).reshape(-1, 2)
    return [float(v) for v in points.flatten()] if len(points) >= 3 else None


def mask_rings(mask: npt.NDArray[np.uint8], tolerance: float = 0.0) -> list[Ring]:
    """H x W mask -> its outer rings and holes (rings left with fewer than 3 vertices are dropped)."""
    rings: list[Ring] = []
    for points, hole in traced_rings(mask):
        flat = simplified(points, tolerance)
        if flat is not None:
            rings.append({"points": flat, "hole": hole})
    return rings


def rings_to_mask(rings: list[Ring], height: int, width: int) -> npt.NDArray[np.uint8]:
    """Outer rings filled, then holes cut out: an H x W uint8 mask."""
    out = np.zeros((height, width), np.uint8)
    for hole in (False, True):
        polygons = [r["points"] for r in rings if r["hole"] is hole]
        if not polygons:
            continue
        drawn = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))).astype(bool)
        out = (out & ~drawn) if hole else (out | drawn)
    return out.astype(np.uint8)


def _finite(value: Any) -> bool:
    """A JSON number a float can hold (not a bool, not NaN/inf, not an integer like 10**400)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def parse_rings(value: Any, height: int, width: int) -> list[Ring]:
    """The rings a client sent, checked: a list of ``{"points": [x, y, …] (≥ 3 vertices, finite,
    within the image), "hole": bool}``. UserError names the first bad one."""
    if not isinstance(value, list) or not value:
        raise UserError('rings must be a non-empty list of {"points": [x0, y0, x1, y1, ...], "hole": false}')
    if len(value) > MAX_RINGS:
        raise UserError(f"at most {MAX_RINGS} rings are accepted, not {len(value)}")
    rings: list[Ring] = []
    total = 0
    for i, ring in enumerate(value):
        points = ring.get("points") if isinstance(ring, dict) else None
        hole = ring.get("hole", False) if isinstance(ring, dict) else None
        if not isinstance(points, list) or len(points) < 6 or len(points) % 2 or not isinstance(hole, bool):
            raise UserError(
                f"rings[{i}] needs points [x0, y0, x1, y1, ...] with at least 3 vertices and hole true/false"
            )
        if not all(_finite(v) for v in points):
            raise UserError(f"rings[{i}]: every coordinate must be a finite number")
        xs, ys = points[0::2], points[1::2]
        if min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height:
            raise UserError(f"rings[{i}] leaves the image ({width} x {height})")
        total += len(points) // 2
        if total > MAX_VERTICES:
            raise UserError(f"at most {MAX_VERTICES} vertices are accepted")
        rings.append({"points": [float(v) for v in points], "hole": hole})
    if not any(not r["hole"] for r in rings):
        raise UserError("the rings need at least one outer ring (hole: false)")
    return rings
