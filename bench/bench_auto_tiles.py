"""``auto`` on one large image (issue 24): tile by tile and merged vs the whole image's embedding.

The image: ``engine.small_objects.make_scene`` (a textured picture, blob objects of several sizes
pasted at their own size, half of them across tile edges or on corners where four tiles meet),
so every object's truth is exact. The generator (``engine.automatic``, vit_t, the given grid) runs

- ``tiled``: on each tile of ``maskloop.tiles.tile_grid`` at full resolution, on that tile's
  embedding, merged by ``engine/tile_merge.py`` (what ``auto`` / ``propose`` / ``auto --ray`` do now);
- ``whole``: on the whole image's embedding (the image scaled to 1024 on its long side; before).

Per mode: seconds (embeddings apart), masks, and against the truth: objects ``found`` (a mask of IoU
>= 0.8), ``twice`` (objects with two or more masks of IoU > 0.5), ``halves`` (masks lying in an
object, >= 80 % of the mask, that cover 20-80 % of it), each also for the objects on tile borders.

Usage: .venv/bin/python bench/bench_auto_tiles.py [--width 3000 --height 2000] [--points-per-side 16] [--json F]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils

from maskloop.engine.automatic import AutomaticMaskGenerator
from maskloop.engine.generator_settings import GeneratorSettings
from maskloop.engine.small_objects import PastedObject, make_scene
from maskloop.engine.tiled_auto import generate_tiled
from maskloop.exporter.embedding import ImageEmbedder
from maskloop.exporter.registry import load_sam
from maskloop.tiles import Tiling, tile_grid


def score(records: list[dict[str, Any]], objects: list[PastedObject], hw: tuple[int, int]) -> dict[str, int]:
    """Objects found / found twice / cut into parts, against the truth (all and on tile borders)."""
    rles = [{"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()} for r in records]
    out = {"masks": len(rles), "objects": len(objects), "on_border": sum(o.on_border for o in objects)}
    for key in ("found", "twice", "halves", "found_on_border", "twice_on_border", "halves_on_border"):
        out[key] = 0
    for obj in objects:
        truth = mask_utils.encode(np.asfortranarray(obj.full(hw).astype(np.uint8)))
        if not rles:
            continue
        iou = np.asarray(mask_utils.iou(rles, [truth], [0])).reshape(-1)
        inside = np.asarray(mask_utils.area([mask_utils.merge([r, truth], intersect=True) for r in rles]), float)
        of_mask = inside / np.maximum(np.asarray(mask_utils.area(rles), float), 1)
        of_truth = inside / float(mask_utils.area(truth))
        result = {
            "found": int(iou.max() >= 0.8),
            "twice": int((iou > 0.5).sum() >= 2),
            "halves": int(((of_mask >= 0.8) & (of_truth >= 0.2) & (of_truth < 0.8)).sum()),
        }
        for key, value in result.items():
            out[key] += value
            if obj.on_border:
                out[f"{key}_on_border"] += value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=3000)
    parser.add_argument("--height", type=int, default=2000)
    parser.add_argument("--sizes", default="60,120,200", help="objects' nominal diameters, px")
    parser.add_argument(
        "--per-size", type=int, default=2, help="objects per size at random places (as many on borders)"
    )
    parser.add_argument("--points-per-side", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", default="tiled,whole")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    image, objects = make_scene(args.seed, args.width, args.height, sizes, args.per_size)
    hw = image.shape[:2]
    model = load_sam("vit_t")
    embedder = ImageEmbedder(model, device="cpu")
    generator = AutomaticMaskGenerator(model, embedder, GeneratorSettings(points_per_side=args.points_per_side))
    tiling = Tiling.for_model(generator.input_size)
    rows = []
    for mode in args.modes.split(","):
        embed_s = 0.0

        def embed(pixels: np.ndarray) -> np.ndarray:
            nonlocal embed_s
            start = time.perf_counter()
            embedding: np.ndarray = embedder.embed([np.ascontiguousarray(pixels)]).astype(np.float16).astype(np.float32)
            embed_s += time.perf_counter() - start
            return embedding

        start = time.perf_counter()
        if mode == "tiled":
            records = generate_tiled(
                generator,
                hw,
                tiling,
                lambda r: image[r[1] : r[3], r[0] : r[2]],
                lambda r: embed(image[r[1] : r[3], r[0] : r[2]]),
            )
        else:
            records = generator.generate(image, embed(image))
        total = time.perf_counter() - start
        row = {"mode": mode, "seconds": round(total, 1), "embed_s": round(embed_s, 1), **score(records, objects, hw)}
        row["tiles"] = len(tile_grid(hw[1], hw[0], tiling)) if mode == "tiled" else 1
        rows.append(row)
        print(json.dumps(row), flush=True)
    header = "| mode | tiles | s (embed s) | masks | found / objects | on border | twice (border) | halves (border) |"
    print(header)
    print("|" + "---|" * 8)
    for r in rows:
        print(
            f"| {r['mode']} | {r['tiles']} | {r['seconds']} ({r['embed_s']}) | {r['masks']} | {r['found']} / {r['objects']} "
            f"| {r['found_on_border']} / {r['on_border']} | {r['twice']} ({r['twice_on_border']}) "
            f"| {r['halves']} ({r['halves_on_border']}) |"
        )
    summary = {
        "image": [args.width, args.height],
        "points_per_side": args.points_per_side,
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
