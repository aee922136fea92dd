"""Zero-shot edge maps (``maskloop edges``) against OpenCV's Canny on voc-mini's object boundaries.

    .venv/bin/python bench/bench_edges.py [--coco ../shared/datasets/voc-mini/annotations.json] [--write-results]

Ground truth: the boundary pixels of every annotated object (``engine.edges.object_boundaries``).
Per image the budget is 2x its boundary pixel count: the strongest pixels of an edge map up to the
budget are kept, and **recall** is the share of boundary pixels with a kept pixel within 3 px. For
Canny (on the grey image, OpenCV), every (low, high) threshold pair of a grid is tried; when it
marks more pixels than the budget, its strongest (Sobel magnitude of the image) are kept; the pair
with the best mean recall is reported. **ODS F** (3 px): one threshold for the whole set (maskloop:
a level of the 0..255 maps; Canny: a threshold pair), precision and recall pooled over images, the
best F. Writes a side-by-side picture (image, maskloop, best Canny) of the first image.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from argparse import Namespace
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
HEADING = "## Zero-shot edge maps vs Canny (issue 26)"
CANNY_LOW = (10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 600)
CANNY_RATIO = (2.0, 3.0)
LEVELS = (1, 2, 4, 8, 16, 32, 64, 96, 128, 160, 192, 224, 240, 250, 255)


def pooled_f(matches) -> tuple[float, float, float]:
    """(precision, recall, F) of pooled matches."""
    found = sum(m.boundary_found for m in matches)
    total = sum(m.boundary_pixels for m in matches)
    on = sum(m.kept_on_boundary for m in matches)
    kept = sum(m.kept_pixels for m in matches)
    p, r = on / max(1, kept), found / max(1, total)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> int:
    from pycocotools.coco import COCO

    from maskloop.cli.context import EngineContext
    from maskloop.engine.automatic import grid_decoder_for
    from maskloop.engine.edges import EdgeSettings, boundary_recall, edge_map, keep_strongest, match, object_boundaries

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--coco", type=Path, default=REPO.parent / "shared" / "datasets" / "voc-mini" / "annotations.json"
    )
    parser.add_argument("--points-per-side", type=int, default=16)
    parser.add_argument("--picture", type=Path, default=REPO / "docs" / "img" / "edges.png")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if not args.coco.is_file():
        sys.exit(f"bench_edges: no ground truth at {args.coco}")
    coco = COCO(str(args.coco))
    ctx = EngineContext(Namespace(device="auto", model_type="vit_t", checkpoint=None))
    decoder = grid_decoder_for(ctx.model)
    settings = EdgeSettings(points_per_side=args.points_per_side)
    images = []
    t0 = time.perf_counter()
    for image_id in sorted(coco.getImgIds()):
        info = coco.loadImgs(image_id)[0]
        path = args.coco.parent / info["file_name"]
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)) if a.get("area", 1) > 0]
        if not anns:
            continue
        boundary = object_boundaries([coco.annToMask(a).astype(bool) for a in anns])
        embedding, hw = ctx.embed(path)
        ours = edge_map(ctx.model, decoder, embedding, hw, settings)
        grey = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
        sobel = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
        images.append({"name": info["file_name"], "boundary": boundary, "ours": ours, "grey": grey, "sobel": sobel})
    seconds = time.perf_counter() - t0

    ours_recall = [boundary_recall(im["ours"].astype(np.float32), im["boundary"]) for im in images]
    canny = {}
    for low in CANNY_LOW:
        for ratio in CANNY_RATIO:
            per = []
            for im in images:
                edges = cv2.Canny(im["grey"], low, low * ratio) > 0
                score = np.where(edges, im["sobel"] + 1.0, 0.0)
                per.append(match(keep_strongest(score, int(2 * im["boundary"].sum())), im["boundary"]))
            canny[(low, ratio)] = per
    best_pair = max(canny, key=lambda k: np.mean([m.recall for m in canny[k]]))
    ours_ods = max(
        ((pooled_f([match(im["ours"] >= t, im["boundary"]) for im in images]), t) for t in LEVELS),
        key=lambda x: x[0][2],  # by F
    )
    canny_ods = max(
        (
            (pooled_f([match(cv2.Canny(im["grey"], lo, lo * r) > 0, im["boundary"]) for im in images]), (lo, r))
            for lo in CANNY_LOW
            for r in CANNY_RATIO
        ),
        key=lambda x: x[0][2],
    )
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": "python " + " ".join(["bench/bench_edges.py", *sys.argv[1:]]),
        "images": [im["name"] for im in images],
        "boundary_pixels": int(sum(im["boundary"].sum() for im in images)),
        "maskloop_recall_at_budget": round(float(np.mean([m.recall for m in ours_recall])), 3),
        "maskloop_precision_at_budget": round(float(np.mean([m.precision for m in ours_recall])), 3),
        "canny_best_pair": list(best_pair),
        "canny_recall_at_budget": round(float(np.mean([m.recall for m in canny[best_pair]])), 3),
        "canny_precision_at_budget": round(float(np.mean([m.precision for m in canny[best_pair]])), 3),
        "maskloop_ods": {
            "level": ours_ods[1],
            **dict(zip(("precision", "recall", "f"), map(lambda v: round(v, 3), ours_ods[0]))),
        },
        "canny_ods": {
            "pair": list(canny_ods[1]),
            **dict(zip(("precision", "recall", "f"), map(lambda v: round(v, 3), canny_ods[0]))),
        },
        "seconds_maskloop_maps": round(seconds, 1),
    }
    print(json.dumps(result, indent=2))
    first = images[0]
    lo, r = best_pair
    side = np.hstack([first["grey"], first["ours"], (cv2.Canny(first["grey"], lo, lo * r) > 0).astype(np.uint8) * 255])
    args.picture.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.picture), side)
    if args.write_results:
        verdict = "met" if result["maskloop_recall_at_budget"] > result["canny_recall_at_budget"] else "not met"
        section = f"""
{HEADING} — {result["date"]}

Machine: {result["machine"]}. Command: `{result["command"]}`. voc-mini: {len(images)} images, 12 objects,
{result["boundary_pixels"]} object-boundary pixels; budget per image 2x its boundary pixels, matched within 3 px;
maskloop's maps: {args.points_per_side}x{args.points_per_side} prompts, box NMS, Sobel of the probability maps, edge NMS
({result["seconds_maskloop_maps"]} s for the {len(images)} maps, embeddings included).

| edge map | boundary recall at the budget | precision at the budget | ODS F (3 px) | at |
|---|---|---|---|---|
| maskloop edges | **{result["maskloop_recall_at_budget"]}** | {result["maskloop_precision_at_budget"]} | {result["maskloop_ods"]["f"]} (P {result["maskloop_ods"]["precision"]}, R {result["maskloop_ods"]["recall"]}) | level ≥ {result["maskloop_ods"]["level"]} |
| OpenCV Canny, best thresholds | {result["canny_recall_at_budget"]} | {result["canny_precision_at_budget"]} | {result["canny_ods"]["f"]} (P {result["canny_ods"]["precision"]}, R {result["canny_ods"]["recall"]}) | recall: low {best_pair[0]}, high {best_pair[0] * best_pair[1]:g}; ODS: low {canny_ods[1][0]}, high {canny_ods[1][0] * canny_ods[1][1]:g} |

Target (issue 26): maskloop's maps find more object boundary than Canny at the same budget: **{verdict}**.
Picture (image, maskloop, Canny at the recall-best thresholds): `docs/img/edges.png`.
"""
        with open(REPO / "bench" / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
