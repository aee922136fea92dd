"""Masks as Ultralytics YOLO segmentation labels (``labels/<name>.txt``, ``data.yaml``).

One label line per polygon: ``class x1 y1 x2 y2 ...``, coordinates divided by the image's width
and height (0..1). Rule for a mask:
  * OpenCV traces it (``cv2.findContours``, two-level hierarchy: outer rings and their holes)
    through the centres of its boundary pixels, as Ultralytics' own converter traces RLE masks;
    a vertex is written at the pixel's centre in continuous image coordinates (pixel x spans
    [x, x + 1], so its centre is x + 0.5), which Ultralytics' ``polygon2mask`` (``cv2.fillPoly``
    on coordinates truncated to integers) turns back into exactly that pixel;
  * every outer ring (every separate part of the mask) is its own line, with the class of the mask;
  * an outer ring's holes are joined to it the way Ultralytics' ``merge_multi_segment`` joins a
    COCO object's polygons: consecutive rings are linked at their closest pair of vertices, and
    one path runs out along the links and back, so each link is walked twice and has no area;
    ``cv2.fillPoly``'s even-odd fill then leaves the holes empty;
  * ``tolerance`` > 0 simplifies every ring first (Douglas-Peucker, in pixels);
  * a ring left with fewer than 3 vertices (a lone pixel, a 1-px line) is dropped: YOLO cannot
    hold it.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt
import yaml

#: Points of the first ring compared at once when looking for the closest pair (bounds memory).
_CHUNK = 2048


def rings_with_holes(mask: npt.NDArray[np.uint8], tolerance: float = 0.0) -> list[list[npt.NDArray[np.float64]]]:
    """HxW mask -> one entry per outer ring: ``[outer, hole, hole, ...]``, each an (N, 2) array of
    (x, y) pixel indices (OpenCV's contour frame: the pixel, not its centre); rings with fewer than
    3 vertices are left out (the holes of a dropped outer ring go with it)."""
    contours, hierarchy = cv2.findContours(
        np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    if hierarchy is None:
        return []

    def ring(index: int) -> npt.NDArray[np.float64] | None:
        points = contours[index]
        if tolerance > 0:
            points = cv2.approxPolyDP(points, tolerance, True)
        xy: npt.NDArray[np.float64] = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return xy if len(xy) >= 3 else None

    parents = hierarchy[0][:, 3]
    out = []
    for i in np.flatnonzero(parents < 0):
        outer = ring(int(i))
        if outer is None:
            continue
        holes = [h for j in np.flatnonzero(parents == i) if (h := ring(int(j))) is not None]
        out.append([outer, *holes])
    return out


def closest_pair(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> tuple[int, int]:
    """Indices (i, j) of the closest vertices ``a[i]``, ``b[j]`` of two (N, 2) / (M, 2) rings."""
    best, best_i, best_j = np.inf, 0, 0
    for start in range(0, len(a), _CHUNK):
        d = ((a[start : start + _CHUNK, None, :] - b[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        if d[i, j] < best:
            best, best_i, best_j = float(d[i, j]), start + int(i), int(j)
    return best_i, best_j


def bridge(rings: Sequence[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    """Rings ``[outer, hole, ...]`` as one closed path, (N, 2), the way Ultralytics'
    ``merge_multi_segment`` joins them: ring k is linked to ring k+1 at their closest vertices;
    the path goes round the first ring, then out along the links, round the last ring, and back
    through the middle rings' other sides, so every link is walked there and back."""
    if len(rings) == 1:
        return np.asarray(rings[0], dtype=np.float64)
    links = [closest_pair(rings[k], rings[k + 1]) for k in range(len(rings) - 1)]
    outward, back = [], []
    last = len(rings) - 1
    for k, ring in enumerate(rings):
        enter = links[k - 1][1] if k > 0 else links[0][0]  # the first ring is left where it is entered
        leave = links[k][0] if k < last else enter
        loop = np.roll(ring, -enter, axis=0)  # starts at the vertex the path enters by
        if k in (0, last):
            outward.append(np.vstack([loop, loop[:1]]))  # all the way round, back to the entry
        else:
            step = (leave - enter) % len(ring)
            outward.append(loop[: step + 1])  # entry .. exit one way round
            back.append(np.vstack([loop[step:], loop[:1]]))  # exit .. entry the other way round
    return np.concatenate(outward + back[::-1])


def label_lines(mask: npt.NDArray[np.uint8], class_index: int, tolerance: float = 0.0) -> list[str]:
    """An HxW mask's YOLO label lines: one per outer ring, holes bridged (see the module's rule)."""
    height, width = mask.shape
    scale = np.array([width, height], dtype=np.float64)
    lines = []
    for rings in rings_with_holes(mask, tolerance):
        xy = np.clip((bridge(rings) + 0.5) / scale, 0.0, 1.0)
        lines.append(f"{class_index} " + " ".join(f"{v:.6f}" for v in xy.reshape(-1)))
    return lines


def data_yaml(names: Sequence[str], root: str | None) -> str:
    """``data.yaml`` text: ``path`` (the data set's root; None: the folder of this file, which is
    where Ultralytics looks when ``path`` is empty), ``train`` and ``val`` (both ``images``: the
    export makes no split), ``names`` in class order."""
    header = (
        "# exported by maskloop: labels/<name>.txt hold one polygon a line, class x y ... (0..1)\n"
        "# train and val are the same images: split them as your training needs\n"
    )
    if root is None:
        header += "# path is empty: Ultralytics then takes the folder holding this file\n"
    body = {"path": root, "train": "images", "val": "images", "names": list(names)}
    text: str = yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
    return header + text
