"""Make the generic photo check set's ground truth (provenance of engine/checkset.json).

Four public-domain / CC0 photos of ``sample_images/`` (licences in its LICENSES.md), nine
objects. Each mask is OpenCV's GrabCut started from a hand-placed box, with hand-placed
foreground / background strokes where the colour model needs them, then cleaned (largest
component, holes filled unless the object has one). Every mask was then checked by eye on an
overlay (``--sheet``) and the strokes adjusted until the outline followed the object.

Usage: .venv/bin/python scripts/make_checkset.py [--sheet overlays.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# photo: [(name, box x0 y0 x1 y1, foreground strokes, background strokes)]; strokes are polylines of (x, y)
# pixel coordinates of the photo as displayed, drawn 7 px wide.
OBJECTS: dict[
    str, list[tuple[str, tuple[int, int, int, int], list[list[tuple[int, int]]], list[list[tuple[int, int]]]]]
] = {
    "astronaut.jpg": [
        ("person", (8, 12, 372, 511), [[(210, 80), (200, 200), (160, 330), (60, 470)]], []),
        ("space shuttle model", (345, 0, 462, 282), [[(405, 30), (400, 150), (410, 240)]], []),
        ("flag", (0, 0, 95, 305), [[(20, 40), (30, 150), (15, 260)]], []),
        ("helmet", (272, 350, 500, 511), [[(330, 430), (420, 470)]], [[(455, 352), (498, 352), (498, 392)]]),
    ],
    "camera.jpg": [
        (
            "person",
            (0, 60, 330, 511),
            [[(160, 150), (120, 300), (60, 450)]],
            [[(296, 280), (266, 505)], [(300, 290), (330, 505)]],
        ),
    ],
    "coffee.jpg": [
        (
            "cup",
            (168, 12, 410, 310),
            [[(250, 130), (330, 200), (230, 260)], [(225, 240), (213, 280), (225, 300)]],
            [[(345, 292), (390, 282)], [(410, 75), (412, 110)]],
        ),
        ("spoon", (318, 60, 425, 325), [[(355, 285), (385, 270)]], []),
        ("saucer", (70, 60, 485, 399), [[(100, 280), (200, 360), (400, 340)]], [[(85, 330), (160, 380), (250, 398)]]),
    ],
    "rocket.jpg": [
        ("rocket", (300, 120, 345, 415), [[(322, 160), (322, 380)]], []),
    ],
}
#: Objects that lie on others: subtracted from the object named here (visible part only).
ON_TOP = {("coffee.jpg", "saucer"): ("cup", "spoon")}
#: Objects whose outline is an ellipse: the ellipse fitted to GrabCut's outer contour (a saucer's rim).
ELLIPSES = {("coffee.jpg", "saucer")}


def grabcut(image: np.ndarray, box: tuple[int, int, int, int], fg: list, bg: list) -> np.ndarray:
    """HxW bool mask of GrabCut from ``box`` with the strokes as sure foreground / background."""
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)  # GC_BGD
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = cv2.GC_PR_FGD
    for strokes, value in ((fg, cv2.GC_FGD), (bg, cv2.GC_BGD)):
        for line in strokes:
            cv2.polylines(mask, [np.array(line, np.int32)], False, value, 7)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, 8, cv2.GC_INIT_WITH_MASK)
    out = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(out.astype(np.uint8), connectivity=8)
    if n > 1:
        out = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    from scipy.ndimage import binary_fill_holes

    return np.asarray(binary_fill_holes(out), bool)


def main() -> int:
    from maskloop.exporter.embedding import load_image_rgb
    from maskloop.masks import encode, measure
    from maskloop.paths import SAMPLE_IMAGES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", type=Path, default=None, help="write an overlay sheet to check by eye")
    args = parser.parse_args()
    images, annotations, tiles = [], [], []
    for image_id, (file_name, objects) in enumerate(OBJECTS.items(), start=1):
        image = load_image_rgb(SAMPLE_IMAGES / file_name)
        h, w = image.shape[:2]
        images.append({"id": image_id, "file_name": file_name, "height": h, "width": w})
        masks = {name: grabcut(image, box, fg, bg) for name, box, fg, bg in objects}
        for photo, name in ELLIPSES:
            if photo == file_name:
                contours, _ = cv2.findContours(masks[name].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
                ellipse = np.zeros((h, w), np.uint8)
                cv2.ellipse(ellipse, cv2.fitEllipse(max(contours, key=cv2.contourArea)), 1, -1)
                masks[name] = ellipse.astype(bool)
        for (photo, name), above in ON_TOP.items():
            if photo == file_name:
                for other in above:
                    masks[name] &= ~cv2.dilate(masks[other].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        for name, mask in masks.items():
            rle = encode(mask)
            area, bbox = measure(rle)
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "name": name,
                 "segmentation": rle, "area": area, "bbox": bbox, "iscrowd": 0}
            )  # fmt: skip
            if args.sheet:
                tile = image.copy()
                tile[mask] = (0.5 * tile[mask] + 0.5 * np.array([0, 255, 0])).astype(np.uint8)
                contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
                cv2.drawContours(tile, contours, -1, (255, 0, 0), 1)
                cv2.putText(tile, name, (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
                tiles.append(cv2.resize(tile, (int(400 * w / h), 400)))
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "object"}]}
    (REPO / "engine" / "checkset.json").write_text(json.dumps(coco) + "\n")
    if args.sheet:
        rows = [np.hstack(tiles[i : i + 4] + [np.zeros((400, 1, 3), np.uint8)]) for i in range(0, len(tiles), 4)]
        width = max(r.shape[1] for r in rows)
        sheet = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
        cv2.imwrite(str(args.sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"{len(annotations)} masks of {len(images)} photos -> engine/checkset.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
