"""Automatic mask generation speed (stage 3) on a CUDA GPU: seconds per image, default vit_t.

(Measures ``engine.automatic.AutomaticMaskGenerator``: segment-anything's generator until issue 11,
maskloop's own since; ``bench/bench_amg.py --device cuda`` runs both side by side.)

    python bench/gpu_amg.py --default-checkpoint vit_t.pt --out gpu_amg.json

(kept runs go to bench/results/gpu_amg_<date>_<gpu>.json)

SAM's default settings (32x32 grid, 64 points per batch, no crops) on every sample photo, the
embedding computed first (as the server's cache would hold it); median and p95 seconds per image
of the generator alone, and masks per image.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    from maskloop.engine.automatic import AutomaticMaskGenerator, GeneratorSettings
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb
    from maskloop.exporter.registry import load_sam
    from maskloop.paths import SAMPLE_IMAGES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--default-checkpoint", type=Path, default=None)
    parser.add_argument("--points-per-batch", type=int, default=64)
    args = parser.parse_args()
    model = load_sam("vit_t", args.default_checkpoint, device="cuda")
    embedder = ImageEmbedder(model, device="cuda")
    photos = [load_image_rgb(p) for p in sorted(SAMPLE_IMAGES.glob("*.jpg"))]
    embeddings = [embedder.embed([p]) for p in photos]
    results = {}
    for ppb in (args.points_per_batch, 256):
        generator = AutomaticMaskGenerator(model, embedder, GeneratorSettings(points_per_batch=ppb))
        generator.generate(photos[0], embeddings[0])  # warm-up
        times, counts = [], []
        for photo, embedding in zip(photos, embeddings):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            masks = generator.generate(photo, embedding)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            counts.append(len(masks))
        results[f"points_per_batch_{ppb}"] = {
            "median_s_per_image": round(float(np.median(times)), 3),
            "p95_s_per_image": round(float(np.percentile(times, 95)), 3),
            "masks_per_image": counts,
            "images": len(photos),
            "sizes": [list(p.shape[:2]) for p in photos],
        }
        print(ppb, results[f"points_per_batch_{ppb}"], flush=True)
    results["gpu"] = torch.cuda.get_device_name(0)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
