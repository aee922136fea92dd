"""CPU embedding latency of the default model: PyTorch vs the encoder exported to onnxruntime.

    .venv/bin/python bench/bench_cpu_embedding.py [--repeats 10]

Per runtime: median and p95 seconds of ``ImageEmbedder.embed([photo])`` (resize + normalise +
encoder) over the sample photos, after one warm-up; 2 torch threads / onnxruntime defaults.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch


def main() -> None:
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb
    from maskloop.exporter.registry import load_sam
    from maskloop.paths import SAMPLE_IMAGES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = load_sam("vit_t")
    photos = [load_image_rgb(p) for p in sorted(SAMPLE_IMAGES.glob("*.jpg"))]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": platform.processor() or platform.machine(),
        "cores": torch.get_num_threads(),
    }
    for runtime in ("torch", "onnxruntime"):
        embedder = ImageEmbedder(model, cpu_runtime=runtime)
        embedder.embed(photos[:1])
        times = []
        for i in range(args.repeats):
            image = photos[i % len(photos)]
            t0 = time.perf_counter()
            embedder.embed([image])
            times.append(time.perf_counter() - t0)
        results[runtime] = {
            "median_s": round(float(np.median(times)), 3),
            "p95_s": round(float(np.percentile(times, 95)), 3),
            "runs": len(times),
        }
        print(runtime, results[runtime], flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
