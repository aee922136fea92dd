"""maskloop's zero-shot edge maps against OpenCV's Canny on a COCO set's object boundaries (issue 26).

    .venv/bin/python bench/bench_edges.py --coco ../shared/datasets/voc-mini/annotations.json \
        --images ../shared/datasets/voc-mini --maps DIR [--picture OUT.png] [--json OUT.json]

``--maps``: the PNGs of ``maskloop edges --images <images> --out DIR`` (same relative names, .png).
Ground truth: the objects' boundary pixels (a mask's pixels with a 4-neighbour outside it; the
image border is not a boundary; ``_background_`` left out), union per image. At the same pixel
budget per image — the strongest 2× as many pixels as the ground truth has — the share of boundary
pixels within 3 px of a kept edge pixel (recall) and the share of kept pixels within 3 px of a
boundary (precision), summed over the set. Canny (on the grey image, 3×3 Sobel, L2 gradient) is
swept over threshold pairs; its kept edges are ranked by gradient magnitude within the budget, and
the pair with the best set recall is its "best thresholds". ODS-style F at 3 px: the best F over
one threshold for the whole set (maskloop: edge strength ≥ t, t = 1..255; Canny: every pair, all
its edges), without the budget.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOLERANCE = 3
CANNY_PAIRS = [(lo, hi) for hi in (50, 100, 150, 200, 250, 300, 400) for lo in (hi // 4, hi // 2)]


def boundary(masks: list[np.ndarray]) -> np.ndarray:
    """Union of the masks' inner boundaries, HxW bool."""
    out = np.zeros(masks[0].shape, bool)
    kernel = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
    for m in masks:
        m8 = m.astype(np.uint8)
        out |= m & ~cv2.erode(m8, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    return out


def near(target: np.ndarray) -> np.ndarray:
    """Distance (px) of every pixel to the nearest True pixel of ``target``."""
    if not target.any():
        return np.full(target.shape, np.inf, np.float32)
    return cv2.distanceTransform((~target).astype(np.uint8), cv2.DIST_L2, 5)


def strongest(score: np.ndarray, budget: int) -> np.ndarray:
    """The ``budget`` pixels with the highest positive ``score``, HxW bool."""
    flat = score.ravel()
    positive = np.flatnonzero(flat > 0)
    order = positive[np.argsort(-flat[positive], kind="stable")][:budget]
    kept = np.zeros(flat.shape, bool)
    kept[order] = True
    return kept.reshape(score.shape)


def counts(kept: np.ndarray, gt: np.ndarray, gt_dist: np.ndarray) -> tuple[int, int, int, int]:
    """(boundary pixels found, boundary pixels, kept pixels near a boundary, kept pixels)."""
    found = int((near(kept)[gt] <= TOLERANCE).sum())
    return found, int(gt.sum()), int((gt_dist[kept] <= TOLERANCE).sum()), int(kept.sum())


def f_score(total: np.ndarray) -> tuple[float, float, float]:
    recall = total[0] / max(1, total[1])
    precision = total[2] / max(1, total[3])
    return recall, precision, 2 * precision * recall / max(1e-9, precision + recall)


def main() -> int:
    from maskloop.engine.dataset import iter_ground_truth, load_coco
    from maskloop.exporter.embedding import load_image_rgb

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coco", type=Path, required=True)
    ap.add_argument("--images", type=Path, required=True)
    ap.add_argument("--maps", type=Path, required=True, help="output folder of maskloop edges")
    ap.add_argument("--picture", type=Path, default=None, help="PNG: image, boundary, Canny, maskloop of one image")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    coco = load_coco(args.coco)
    images = []
    for gt in iter_ground_truth(coco, args.images):
        rgb = load_image_rgb(gt.path)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        relative = (args.maps / gt.path.relative_to(args.images)).with_suffix(".png")
        ours = np.array(Image.open(relative if relative.is_file() else args.maps / f"{gt.path.stem}.png"))
        b = boundary(gt.masks)
        images.append((gt.path, rgb, grey, ours, b, near(b)))
    ours_total = np.zeros(4)
    for _, _, _, ours, b, dist in images:
        ours_total += counts(strongest(ours.astype(np.float32), 2 * int(b.sum())), b, dist)
    canny = {}
    for lo, hi in CANNY_PAIRS:
        total = np.zeros(4)
        for _, _, grey, _, b, dist in images:
            edges = cv2.Canny(grey, lo, hi, L2gradient=True) > 0
            magnitude = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
            total += counts(strongest(np.where(edges, magnitude + 1, 0), 2 * int(b.sum())), b, dist)
        canny[(lo, hi)] = total
    best_pair = max(canny, key=lambda k: canny[k][0] / canny[k][1])
    ods_ours = max(
        f_score(sum((np.array(counts(o >= t, b, d)) for _, _, _, o, b, d in images), np.zeros(4)))[2]
        for t in range(1, 256, 4)
    )
    ods_canny = max(
        f_score(
            sum(
                (np.array(counts(cv2.Canny(g, lo, hi, L2gradient=True) > 0, b, d)) for _, _, g, _, b, d in images),
                np.zeros(4),
            )
        )[2]
        for lo, hi in CANNY_PAIRS
    )
    r_o, p_o, f_o = f_score(ours_total)
    r_c, p_c, f_c = f_score(canny[best_pair])
    report = {
        "images": len(images),
        "boundary_pixels": int(ours_total[1]),
        "tolerance_px": TOLERANCE,
        "maskloop": {
            "recall": round(r_o, 4),
            "precision": round(p_o, 4),
            "f": round(f_o, 4),
            "ods_f": round(ods_ours, 4),
        },
        "canny": {
            "thresholds": list(best_pair),
            "recall": round(r_c, 4),
            "precision": round(p_c, 4),
            "f": round(f_c, 4),
            "ods_f": round(ods_canny, 4),
        },
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.picture:
        path, rgb, grey, ours, b, _ = images[0]
        lo, hi = best_pair
        canny_map = (cv2.Canny(grey, lo, hi, L2gradient=True) > 0).astype(np.uint8) * 255
        tiles = [
            rgb,
            np.stack([b.astype(np.uint8) * 255] * 3, -1),
            np.stack([canny_map] * 3, -1),
            np.stack([ours] * 3, -1),
        ]
        Image.fromarray(np.concatenate(tiles, axis=1)).save(args.picture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
