"""maskloop's automatic mask generator against segment-anything's, side by side: quality and speed.

    .venv/bin/python bench/bench_amg.py --images sample_images/rocket.jpg ... [--points-per-side 32]
        [--page-points 16] [--exact-images 2] [--device cpu] [--out bench/results/amg_<date>_cpu.json]
        [--propose PHOTO --propose-runs 5] [--auto-rss 5 15 --auto-rss-points 16]

Per image, on the same model (default vit_t), the same cached embedding and the same settings:
``SamAutomaticMaskGenerator`` (``engine/official_amg.py``), maskloop's generator with
coverage-aware sampling (the default) and, on the first ``--exact-images`` images, without it
(every grid point decoded, as SAM does). Quality: recall = share of the official masks that one
of maskloop's matches at IoU >= 0.85, precision = share of maskloop's matched by an official
one. Speed: seconds per image of each, and their ratio. ``--page-points`` also times maskloop at
the page's CPU grid (Propose's default). Peak RSS of the process is printed at the end.

``--propose``: the page's Propose button as the page calls it — a real ``maskloop serve --device cpu``
on loopback, the image's embedding fetched first (the page has it before the button can be
pressed), then ``POST /api/images/<id>/propose`` (the server's default grid) ``--propose-runs``
times after one warm-up; p50 / p95 of the request time.
``--auto-rss N ...``: peak RSS (``wait4``'s ``ru_maxrss``) of ``maskloop auto`` over a folder of N
images, one fresh process per N: the first min(N) sample photos and flipped / mirrored copies of
them, so every folder holds the same image sizes and only the number of images grows.

SAM's generator takes ~3 minutes per photo at 32x32 on a 2-core CPU, so its masks and timing are
cached per (image bytes, model weights, settings, device, threads) under ``--official-cache``
(default ``bench/.cache/amg``, git-ignored); a row says ``official_cached`` and the machine load of
the run that timed it. ``--refresh-official`` re-runs and re-times SAM's generator.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils

MATCH_IOU = 0.85
OFFICIAL_CACHE = Path(__file__).resolve().parent / ".cache" / "amg"


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
    """(masks, wall seconds); the process's CPU seconds of the call go to ``CPU_SECONDS``."""
    if device == "cuda":
        torch.cuda.synchronize()
    start, cpu_start = time.perf_counter(), time.process_time()
    masks = generate(image, embedding)
    if device == "cuda":
        torch.cuda.synchronize()
    CPU_SECONDS.append(time.process_time() - cpu_start)
    return masks, time.perf_counter() - start


#: CPU seconds of each ``timed`` call: on a shared machine they move less with the load than wall time.
CPU_SECONDS: list[float] = []


def official_cache_key(image_path: Path, weights_sha256: str, settings: dict, device: str, threads: int) -> str:
    """Name of an official run's cache file: what the masks and the timing depend on."""
    from maskloop.digest import sha256_file

    key = {
        "image": sha256_file(image_path),
        "weights": weights_sha256,
        "settings": settings,
        "device": device,
        "threads": threads,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def load_average() -> float:
    """The machine's 1-minute load average (what a timing on a shared machine must be read against)."""
    return round(os.getloadavg()[0], 2)


def official_run(generate, image, embedding, device: str, cache: Path | None, refresh: bool) -> dict:
    """SAM's masks and timing for one image: from ``cache`` (a JSON file) when present, else run and store."""
    if cache is not None and cache.exists() and not refresh:
        return {**json.loads(cache.read_text()), "cached": True}
    load_before = load_average()
    masks, seconds = timed(generate, image, embedding, device)
    run = {
        "masks": masks,
        "s": seconds,
        "cpu_s": CPU_SECONDS[-1],
        "load": [load_before, load_average()],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(run))
    return {**run, "cached": False}


def summary(values: list[float]) -> dict:
    return {"median": round(float(np.median(values)), 3), "p95": round(float(np.percentile(values, 95)), 3)}


def bench_propose(photo: Path, runs: int) -> dict:
    """Seconds of ``POST /api/images/<id>/propose`` on a real server (CPU, the server's default grid)."""
    from bench_server import start_server

    with tempfile.TemporaryDirectory(prefix="maskloop-propose-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        shutil.copy(photo, data / photo.name)
        server = start_server(data, Path(tmp) / "work", None)
        proc = server.proc
        try:
            conn = http.client.HTTPConnection(server.host, server.port, timeout=1200)

            def call(method: str, path: str) -> tuple[int, bytes]:
                conn.request(method, path, body=b"" if method == "POST" else None)
                response = conn.getresponse()
                return response.status, response.read()

            image = json.loads(call("GET", "/api/images")[1])[0]
            assert call("GET", f"/api/images/{image['id']}/embedding")[0] == 200
            times, cpu_times, answers = [], [], []
            for i in range(runs + 1):  # the first exports the decoder graph if it is not cached yet
                start, cpu_start = time.perf_counter(), process_cpu_seconds(proc.pid)
                status, body = call("POST", f"/api/images/{image['id']}/propose")
                assert status == 201, body
                if i:
                    times.append(time.perf_counter() - start)
                    cpu_times.append(process_cpu_seconds(proc.pid) - cpu_start)
                    answers.append(json.loads(body)["generated"])
        finally:
            server.stop()
    cpu = summary(cpu_times)
    return {
        "image": photo.name,
        "runs": runs,
        "masks_generated": answers[0],
        **summary(times),
        "server_cpu_s_median": cpu["median"],
        "server_cpu_s_p95": cpu["p95"],
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux ``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def image_folder(dest: Path, n: int, base: int) -> Path:
    """``n`` distinct photos in ``dest``: the first ``base`` sample photos, then flipped / mirrored /
    re-encoded copies of them (so folders of different sizes hold the same image sizes)."""
    from PIL import Image, ImageOps

    from maskloop.paths import SAMPLE_IMAGES

    sources = sorted(SAMPLE_IMAGES.glob("*.jpg"))[:base]
    dest.mkdir(parents=True)
    for i in range(n):
        src, copy = sources[i % base], i // base
        image = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
        if copy:
            image = ImageOps.mirror(image) if copy % 2 else ImageOps.flip(image)
        image.save(dest / f"{i:03d}_{src.stem}.jpg", quality=90 - copy)
    return dest


def bench_auto_rss(counts: list[int], points: int) -> list[dict]:
    """Peak RSS and wall time of one ``maskloop auto`` process per folder size."""
    rows = []
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="maskloop-rss-") as tmp:
            folder = image_folder(Path(tmp) / "data", n, base=min(counts))
            argv = [
                sys.executable,
                "-m",
                "maskloop.cli",
                "auto",
                "--data",
                str(folder),
                "--out",
                str(Path(tmp) / "auto.json"),
            ]
            argv += ["--points-per-side", str(points), "--device", "cpu"]
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, f"maskloop auto failed on {n} images"
            annotations = len(json.loads((Path(tmp) / "auto.json").read_text())["annotations"])
            row = {
                "images": n,
                "points_per_side": points,
                "peak_rss_mib": round(usage.ru_maxrss / 1024),
                "wall_s": round(time.perf_counter() - start, 1),
                "masks": annotations,
            }
        rows.append(row)
        print(json.dumps({"auto_rss": row}), flush=True)
    return rows


def main() -> None:
    from maskloop.engine.automatic import AutomaticMaskGenerator, GeneratorSettings
    from maskloop.engine.official_amg import OfficialMaskGenerator, official_settings
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb
    from maskloop.exporter.registry import checkpoint_sha256, load_sam

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, nargs="*", default=[])
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--page-points", type=int, default=16, help="also time maskloop at this grid (0: skip)")
    parser.add_argument("--exact-images", type=int, default=1, help="images also run without coverage-aware sampling")
    parser.add_argument("--model-type", default="vit_t")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write the per-image results as JSON (kept runs: bench/results/amg_<date>_<tag>.json)",
    )
    parser.add_argument("--propose", type=Path, default=None, help="time the page's Propose on this photo")
    parser.add_argument("--propose-runs", type=int, default=5)
    parser.add_argument("--auto-rss", type=int, nargs="*", default=[], help="peak RSS of `maskloop auto` on N images")
    parser.add_argument("--auto-rss-points", type=int, default=16, help="grid of those `auto` runs")
    parser.add_argument("--official-cache", type=Path, default=OFFICIAL_CACHE, help="where SAM's runs are cached")
    parser.add_argument("--no-official-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--refresh-official", action="store_true", help="re-run SAM's generator even if cached")
    args = parser.parse_args()
    extra = {}
    if args.propose:
        extra["propose"] = bench_propose(args.propose, args.propose_runs)
        print(json.dumps({"propose": extra["propose"]}), flush=True)
    if args.auto_rss:
        extra["auto_rss"] = bench_auto_rss(args.auto_rss, args.auto_rss_points)
    if not args.images:
        if args.out:
            args.out.write_text(json.dumps(extra, indent=2) + "\n")
        return
    torch.set_num_threads(args.threads)
    model = load_sam(args.model_type, args.checkpoint, device=args.device)
    embedder = ImageEmbedder(model, device=args.device)
    settings = GeneratorSettings(points_per_side=args.points_per_side)
    official = OfficialMaskGenerator(model, embedder, settings)
    weights = checkpoint_sha256(args.model_type, args.checkpoint)
    ours = AutomaticMaskGenerator(model, embedder, settings)
    exact = AutomaticMaskGenerator(
        model, embedder, GeneratorSettings(points_per_side=args.points_per_side, skip_covered_points=False)
    )
    page = AutomaticMaskGenerator(model, embedder, GeneratorSettings(points_per_side=args.page_points or 1))
    rows = []
    for i, path in enumerate(args.images):
        image = load_image_rgb(path)
        embedding = embedder.embed([image])
        key = official_cache_key(path, weights, official_settings(settings), args.device, args.threads)
        cache = None if args.no_official_cache else args.official_cache / f"{key}.json"
        run = official_run(official.generate, image, embedding, args.device, cache, args.refresh_official)
        reference, t_official, cpu_official = run["masks"], run["s"], run["cpu_s"]
        load_before = load_average()
        found, t_ours = timed(ours.generate, image, embedding, args.device)
        cpu_ours = CPU_SECONDS[-1]
        row = {
            "image": path.name,
            "size": list(image.shape[:2]),
            "official_masks": len(reference),
            "official_s": round(t_official, 2),
            "official_cached": run["cached"],
            "official_timed": f"{run['date']}, load {run['load'][0]}-{run['load'][1]}",
            "load": [load_before, load_average()],
            "masks": len(found),
            "s": round(t_ours, 2),
            "points_skipped": ours.points_skipped,
            "speedup": round(t_official / t_ours, 2),
            "official_cpu_s": round(cpu_official, 2),
            "cpu_s": round(cpu_ours, 2),
            "cpu_speedup": round(cpu_official / cpu_ours, 2),
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
        "speedup_total_cpu_time": round(sum(r["official_cpu_s"] for r in rows) / sum(r["cpu_s"] for r in rows), 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.page_points:
        result[f"page_{args.page_points}x{args.page_points}_s"] = summary([r["page_s"] for r in rows])
    result.update(extra)
    print(json.dumps({k: v for k, v in result.items() if k != "images"}))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
