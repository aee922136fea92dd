"""Reference data for the page's pure JS modules (``web/tests/``), computed by the Python code
they must agree with: ``decoder_runtime`` (coordinate scaling, SAM's postprocess) and
pycocotools (RLE).

Usage: ``python tests/web/web_js_fixtures.py OUT_DIR`` (the Node tests run it themselves when
``MASKLOOP_JS_FIXTURES`` does not name a folder that already holds the files).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

#: (H, W) image sizes: landscape, portrait (EXIF-rotated), large, square, thin and tiny.
POSTPROCESS_SIZES = [(300, 451), (451, 300), (2000, 3000), (1024, 1024), (17, 1023), (7, 5)]
RLE_SIZES = [(1, 1), (5, 7), (300, 451), (64, 48), (2000, 3000)]


def smooth_logits(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """Low-res logits with both blobs (like real masks) and fine sign changes (hard cases)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.full((size, size), -4.0, np.float32)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(8, 60)
        out = np.maximum(out, 6.0 * (1 - np.hypot(xx - cx, yy - cy) / r))
    out += rng.normal(0, 1.5, out.shape).astype(np.float32)
    return out.astype(np.float32)


def tile_routes(rng: np.random.Generator) -> list[dict[str, object]]:
    """Prompts on large (and small) images and the region ``maskloop.tiles.route_prompt`` sends each to."""
    from maskloop.tiles import Tiling, route_prompt

    tiling = Tiling()
    cases: list[dict[str, object]] = []
    for w, h in [(9000, 6000), (3000, 2000), (2048, 1500), (2600, 900), (5000, 5000)]:
        for _ in range(40):
            points = rng.uniform(0, [w, h], (int(rng.integers(0, 4)), 2)).round(1)
            box = None
            if not len(points) or rng.random() < 0.3:
                x0, y0 = rng.uniform(0, [w - 10, h - 10])
                bw, bh = rng.uniform(5, [min(3000, w - x0), min(3000, h - y0)])
                box = [round(float(x0), 1), round(float(y0), 1), round(float(x0 + bw), 1), round(float(y0 + bh), 1)]
            route = route_prompt(points.tolist(), box, w, h, tiling)
            cases.append(
                {
                    "w": w,
                    "h": h,
                    "points": points.tolist(),
                    "box": box,
                    "kind": route.kind,
                    "region": list(route.region),
                    "tiling": dict(tiling.to_json()),
                }
            )
    return cases


def write(out_dir: Path) -> None:
    from pycocotools import mask as mask_utils

    from maskloop.exporter.decoder_runtime import preprocess_shape, upsample_logits, xy_image_to_model

    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    index = {"input_size": 1024, "postprocess": [], "frames": [], "rle": []}

    for k, (h, w) in enumerate(POSTPROCESS_SIZES):
        low = smooth_logits(rng)
        logits = upsample_logits(low[None], (h, w), 1024)[0].astype(np.float32)
        np.save(out_dir / f"post{k}_low.npy", low)
        np.save(out_dir / f"post{k}_logits.npy", logits)
        index["postprocess"].append(
            {
                "h": h,
                "w": w,
                "low": f"post{k}_low.npy",
                "logits": f"post{k}_logits.npy",
                "resized": list(preprocess_shape(h, w, 1024)),
            }
        )

    for h, w in [(300, 451), (451, 300), (2000, 3000), (7, 5), (1024, 1024)]:
        xy = np.concatenate([rng.uniform(0, [w, h], (20, 2)), [[0, 0], [w - 0.5, h - 0.5], [0.5, 0.5]]])
        model = xy_image_to_model(xy, (h, w), 1024)
        index["frames"].append({"h": h, "w": w, "xy": xy.tolist(), "xy_model": model.astype(np.float64).tolist()})

    for k, (h, w) in enumerate(RLE_SIZES):
        for kind in ("random", "blobs", "empty", "full"):
            if kind == "random":
                mask = rng.random((h, w)) < 0.5
            elif kind == "blobs":
                yy, xx = np.mgrid[0:h, 0:w]
                mask = np.hypot(xx - w * 0.4, yy - h * 0.5) < max(1, min(h, w) * 0.3)
                mask |= (xx > w * 0.7) & (yy < h * 0.3)
            elif kind == "empty":
                mask = np.zeros((h, w), bool)
            else:
                mask = np.ones((h, w), bool)
            if h * w > 10**6 and kind == "random":
                continue  # a 6 Mpx random mask is a 3 M-run string: slow, and adds nothing
            mask_u8 = mask.astype(np.uint8)
            rle = mask_utils.encode(np.asfortranarray(mask_u8))
            name = f"rle{k}_{kind}.npy"
            np.save(out_dir / name, mask_u8)
            index["rle"].append(
                {
                    "h": h,
                    "w": w,
                    "mask": name,
                    "counts": rle["counts"].decode("ascii"),
                    "area": int(mask_utils.area(rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                }
            )

    # Unions of overlapping masks (what the page's "uncovered area" subtracts from the image).
    index["union"] = []
    for h, w in [(300, 451), (64, 48), (1, 1)]:
        yy, xx = np.mgrid[0:h, 0:w]
        masks = [
            np.hypot(xx - w * cx, yy - h * cy) < max(1, min(h, w) * r)
            for cx, cy, r in [(0.3, 0.4, 0.25), (0.45, 0.5, 0.2), (0.8, 0.2, 0.15)]
        ]
        masks.append(rng.random((h, w)) < 0.1)
        rles = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks]
        merged = mask_utils.merge(rles, intersect=0)
        index["union"].append(
            {
                "h": h,
                "w": w,
                "counts": [r["counts"].decode("ascii") for r in rles],
                "union_counts": merged["counts"].decode("ascii"),
                "area": int(mask_utils.area(merged)),
            }
        )

    # Clean-ups (components.js) against OpenCV's connected components: parts 8-connected, holes
    # 4-connected background regions that do not touch the border.
    import cv2

    index["cleanup"] = []
    for k, (h, w) in enumerate([(60, 80), (200, 300), (1, 9), (33, 1)]):
        yy, xx = np.mgrid[0:h, 0:w]
        mask = np.zeros((h, w), bool)
        for _ in range(6):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1, max(2, min(h, w) / 4))
            mask |= np.hypot(xx - cx, yy - cy) < r
        mask ^= rng.random((h, w)) < 0.08  # specks and pinholes
        mask = mask.astype(np.uint8)
        case = {"h": h, "w": w, "mask": f"cleanup_{k}.npy", "limit": 12}
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        small = np.isin(labels, 1 + np.flatnonzero(areas < case["limit"]))
        case["drop_islands"] = f"cleanup_{k}_islands.npy"
        np.save(out_dir / case["drop_islands"], (mask & ~small).astype(np.uint8))
        largest = (labels == 1 + int(np.argmax(areas))) if n > 1 else np.zeros_like(mask, bool)
        case["keep_largest"] = f"cleanup_{k}_largest.npy"
        np.save(out_dir / case["keep_largest"], largest.astype(np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - mask, connectivity=4)
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        holes = [i for i in range(1, n) if i not in edge and stats[i, cv2.CC_STAT_AREA] < case["limit"]]
        case["fill_holes"] = f"cleanup_{k}_holes.npy"
        np.save(out_dir / case["fill_holes"], (mask | np.isin(labels, holes)).astype(np.uint8))
        np.save(out_dir / case["mask"], mask)
        index["cleanup"].append(case)

    index["tiles"] = tile_routes(rng)
    (out_dir / "index.json").write_text(json.dumps(index))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/web/web_js_fixtures.py OUT_DIR")
    write(Path(sys.argv[1]))
