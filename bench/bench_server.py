"""Server benchmark: bytes per embedding, cached-embedding GET and annotation POST latency, precompute rate.

    .venv/bin/python bench/bench_server.py                    # everything, CPU
    .venv/bin/python bench/bench_server.py --part precompute --device cuda --copies 8

``http`` runs a real ``maskloop serve`` on loopback (``--no-precompute``, so the loops are not
competing with the worker) and times, over one keep-alive connection:
  - GET /api/images/<id>/embedding of a cached embedding (body fully read), and the 304 answer
    to a revalidation with If-None-Match;
  - POST /api/images/<id>/annotations of a realistic mask (each one committed with fsync).
``precompute`` times maskloop's embedding worker (decode, embed, float16 write) over a copy of
the sample photos (``--copies`` makes flipped/re-encoded variants, so every file is new content),
after one warm-up embedding so that model loading is not counted.
Not a timed test: numbers go into bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from live_server import LiveServer  # noqa: E402


def percentiles(samples: list[float]) -> dict:
    ms = np.array(samples) * 1000
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "min_ms": round(float(ms.min()), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def sample_copy(dest: Path, copies: int) -> Path:
    """The sample photos into ``dest``; ``copies`` > 1 adds flipped / re-encoded variants (new content)."""
    from PIL import Image, ImageOps

    from maskloop.paths import SAMPLE_IMAGES

    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted(SAMPLE_IMAGES.glob("*.jpg")):
        shutil.copy(src, dest / src.name)
        for k in range(1, copies):
            img = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
            img = ImageOps.mirror(img) if k % 2 else ImageOps.flip(img)
            img.save(dest / f"{src.stem}_v{k}.jpg", quality=85 + k % 10)
    return dest


# -- http ---------------------------------------------------------------------------------------
def start_server(data: Path, workdir: Path, onnx_dir: Path | None, *extra: str) -> LiveServer:
    """``maskloop serve --device cpu --no-precompute [EXTRA...]``, listening (``tests/live_server.py``)."""
    env = {"MASKLOOP_ONNX_DIR": str(onnx_dir)} if onnx_dir is not None else {}
    return LiveServer(data, workdir, args=["--device", "cpu", "--no-precompute", *extra], env=env)


def bench_http(n: int, onnx_dir: Path | None) -> dict:
    from maskloop import masks

    with tempfile.TemporaryDirectory(prefix="maskloop-bench-") as tmp:
        data = sample_copy(Path(tmp) / "data", 1)
        server = start_server(data, Path(tmp) / "work", onnx_dir)
        try:
            conn = http.client.HTTPConnection(server.host, server.port, timeout=600)

            def call(method: str, path: str, body: bytes | None = None, headers: dict | None = None):
                conn.request(method, path, body=body, headers=headers or {})
                response = conn.getresponse()
                return response, response.read()

            _, listing = call("GET", "/api/images")
            image = next(img for img in json.loads(listing) if img["file_name"] == "astronaut.jpg")
            url = f"/api/images/{image['id']}/embedding"
            t0 = time.perf_counter()
            response, first = call("GET", url)
            compute_s = time.perf_counter() - t0
            etag = response.getheader("ETag")
            _, first32 = call("GET", url + "?dtype=float32")
            get_times, revalidate_times = [], []
            for _ in range(n):
                t0 = time.perf_counter()
                response, body = call("GET", url)
                get_times.append(time.perf_counter() - t0)
                assert response.status == 200 and len(body) == len(first)
            for _ in range(n):
                t0 = time.perf_counter()
                response, _ = call("GET", url, headers={"If-None-Match": etag})
                revalidate_times.append(time.perf_counter() - t0)
                assert response.status == 304

            _, cat = call(
                "POST", "/api/categories", json.dumps({"name": "bench"}).encode(), {"Content-Type": "application/json"}
            )
            mask = np.zeros((image["height"], image["width"]), np.uint8)
            yy, xx = np.mgrid[: image["height"], : image["width"]]
            mask[((yy - 250) / 140) ** 2 + ((xx - 240) / 90) ** 2 <= 1] = 1  # an ellipse, ~40k pixels
            body = json.dumps(
                {
                    "category_id": json.loads(cat)["id"],
                    "segmentation": masks.encode(mask),
                    "clicks": 3,
                    "seconds": 5.0,
                    "prompts": {"points": [[240, 250, 1]]},
                }
            ).encode()
            post_times = []
            for _ in range(n):
                t0 = time.perf_counter()
                response, _ = call(
                    "POST", f"/api/images/{image['id']}/annotations", body, {"Content-Type": "application/json"}
                )
                post_times.append(time.perf_counter() - t0)
                assert response.status == 201
            conn.close()
        finally:
            server.stop()
    return {
        "bytes_per_embedding_float16": len(first),
        "bytes_per_embedding_float32": len(first32),
        "first_embedding_s_including_model_load": round(compute_s, 3),
        "cached_embedding_get": percentiles(get_times),
        "embedding_revalidate_304": percentiles(revalidate_times),
        "annotation_post": percentiles(post_times),
        "annotation_post_body_bytes": len(body),
    }


# -- precompute ---------------------------------------------------------------------------------
def bench_precompute(device: str, copies: int, precision: str, threads: int | None, checkpoint: str | None) -> dict:
    from maskloop.digest import sha256_file
    from maskloop.server.jobs.embeddings import EmbeddingService
    from maskloop.server.jobs.model import ModelService, cpu_threads

    with tempfile.TemporaryDirectory(prefix="maskloop-bench-") as tmp:
        data = sample_copy(Path(tmp) / "data", copies)
        files = sorted(data.glob("*.jpg"))
        model = ModelService("vit_t", checkpoint, device, precision, Path(tmp) / "onnx", threads)
        service = EmbeddingService(model, Path(tmp) / "embeddings")
        # warm-up: load the model and run it once on an image that is not in the set
        from maskloop.exporter.embedding import load_image_rgb

        model.embed([load_image_rgb(files[0])[::2, ::2].copy()])
        if device == "cuda":
            model.embed([load_image_rgb(f) for f in files[: model.batch_size]])  # cudnn autotune etc.
        jobs = [(sha256_file(f), f, i + 1) for i, f in enumerate(files)]
        service.sync(jobs)
        t0 = time.perf_counter()
        service.start()
        while service.progress()["done"] < len(jobs):
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        service.stop()
        sizes = {p.stat().st_size for p in (Path(tmp) / "embeddings").rglob("*.npy")}
    import torch

    return {
        "device": device,
        "precision": model.resolved_precision(device),
        "images": len(jobs),
        "seconds": round(elapsed, 3),
        "images_per_s": round(len(jobs) / elapsed, 3),
        "batch_size": model.batch_size,
        "torch_threads": torch.get_num_threads() if device == "cpu" else None,
        "cpus": cpu_threads(),
        "file_bytes": sorted(sizes),
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "http", "precompute"], default="all")
    parser.add_argument("--n", type=int, default=200, help="requests per latency loop (default 200)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="for the precompute part")
    parser.add_argument("--precision", default="auto", help="auto (maskloop's choice), fp32; fp16/bf16 on CUDA")
    parser.add_argument(
        "--copies", type=int, default=1, help="variants per sample photo for precompute (default 1: 9 images)"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all CPUs)")
    parser.add_argument("--checkpoint", help="vit_t weights file (default: the imported default model)")
    parser.add_argument("--onnx-dir", type=Path, help="reuse a decoder export (saves the export at server start)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here (kept runs: bench/results/)")
    args = parser.parse_args()
    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "command": " ".join(sys.argv),
    }
    if args.part in ("all", "http"):
        result["http"] = bench_http(args.n, args.onnx_dir)
        print(json.dumps(result["http"], indent=2), flush=True)
    if args.part in ("all", "precompute"):
        result["precompute"] = bench_precompute(args.device, args.copies, args.precision, args.threads, args.checkpoint)
        print(json.dumps(result["precompute"], indent=2), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
