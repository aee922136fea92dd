"""maskloop's automatic mask generator against segment-anything's, side by side: quality and speed.

    .venv/bin/python bench/bench_amg.py --images sample_images/rocket.jpg ... [--points-per-side 32]
        [--page-points 16] [--exact-images 2] [--device cpu] [--out amg.json]

Per image, on the same model (default vit_t), the same cached embedding and the same settings:
``SamAutomaticMaskGenerator`` (``engine/official_amg.py``), maskloop's generator with
coverage-aware sampling (the default) and, on the first ``--exact-images`` images, without it
(every grid point decoded, as SAM does). Quality: recall = share of the official masks that one
of maskloop's matches at IoU >= 0.85, precision = share of maskloop's matched by an official
one. Speed: seconds per image of each, and their ratio. ``--page-points`` also times maskloop at
the page's CPU grid (Propose's default). Peak RSS of the process is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils

MATCH_IOU = 0.85


def match(reference: list[dict], ours: list[dict]) -> tuple[float, float]:
    """(recall, precision) of ``ours`` against ``reference`` at mask IoU >= MATCH_IOU."""
    if not reference or not ours:
        return float(not reference), float(not ours)
    rles = lambda masks: [
        {"size": m["segmentation"]["size"], "counts": m["segmentation"]["counts"].encode()} for m in masks
    ]  # noqa: E731
    iou = np.atleast_2d(mask_utils.iou(rles(reference), rles(ours), [0] * len(ours)))
    return float((iou.max(1) >= MATCH_IOU).mean()), float((iou.max(0) >= MATCH_IOU).mean())


def timed(generate, image, embedding, device: str) -> tuple[list[dict], float]:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    masks = generate(image, embedding)
    if device == "cuda":
        torch.cuda.synchronize()
    return masks, time.perf_counter() - start


def summary(values: list[float]) -> dict:
    return {"median": round(float(np.median(values)), 3), "p95": round(float(np.percentile(values, 95)), 3)}


def main() -> None:
    from maskloop.engine.automatic import AutomaticMaskGenerator, GeneratorSettings
    from maskloop.engine.official_amg import OfficialMaskGenerator
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb
    from maskloop.exporter.registry import load_sam

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, nargs="+", required=True)
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--page-points", type=int, default=16, help="also time maskloop at this grid (0: skip)")
    parser.add_argument("--exact-images", type=int, default=1, help="images also run without coverage-aware sampling")
    parser.add_argument("--model-type", default="vit_t")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the per-image results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_sam(args.model_type, args.checkpoint, device=args.device)
    embedder = ImageEmbedder(model, device=args.device)
    settings = GeneratorSettings(points_per_side=args.points_per_side)
    official = OfficialMaskGenerator(model, embedder, settings)
    ours = AutomaticMaskGenerator(model, embedder, settings)
    exact = AutomaticMaskGenerator(
        model, embedder, GeneratorSettings(points_per_side=args.points_per_side, skip_covered_points=False)
    )
    page = AutomaticMaskGenerator(model, embedder, GeneratorSettings(points_per_side=args.page_points or 1))
    rows = []
    for i, path in enumerate(args.images):
        image = load_image_rgb(path)
        embedding = embedder.embed([image])
        reference, t_official = timed(official.generate, image, embedding, args.device)
        found, t_ours = timed(ours.generate, image, embedding, args.device)
        row = {
            "image": path.name,
            "size": list(image.shape[:2]),
            "official_masks": len(reference),
            "official_s": round(t_official, 2),
            "masks": len(found),
            "s": round(t_ours, 2),
            "points_skipped": ours.points_skipped,
            "speedup": round(t_official / t_ours, 2),
        }
        row["recall"], row["precision"] = (round(v, 4) for v in match(reference, found))
        if i < args.exact_images:
            found_exact, t_exact = timed(exact.generate, image, embedding, args.device)
            row["exact_s"], row["exact_speedup"] = round(t_exact, 2), round(t_official / t_exact, 2)
            row["exact_recall"], row["exact_precision"] = (round(v, 4) for v in match(reference, found_exact))
        if args.page_points:
            row["page_s"] = round(timed(page.generate, image, embedding, args.device)[1], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    matched = lambda key, ref_key: sum(r[key] * r[ref_key] for r in rows) / max(1, sum(r[ref_key] for r in rows))  # noqa: E731
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} torch threads, {args.device}",
        "model": args.model_type,
        "points_per_side": args.points_per_side,
        "images": rows,
        "recall": round(matched("recall", "official_masks"), 4),
        "precision": round(matched("precision", "masks"), 4),
        "official_s": summary([r["official_s"] for r in rows]),
        "maskloop_s": summary([r["s"] for r in rows]),
        "speedup_total_time": round(sum(r["official_s"] for r in rows) / sum(r["s"] for r in rows), 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.page_points:
        result[f"page_{args.page_points}x{args.page_points}_s"] = summary([r["page_s"] for r in rows])
    print(json.dumps({k: v for k, v in result.items() if k != "images"}))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
