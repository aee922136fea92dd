"""The data engine learns: fine-tuning the decoder on accepted masks of a domain where SAM is weak.

1. Writes the texture domain (``engine/texture_domain.py``: scikit-image's brick / grass / gravel
   photographs, objects that differ from their background by texture alone, exact masks) into a
   fresh project and imports its masks as accepted annotations.
2. Precomputes the embeddings (timed apart: the server has them cached when people annotate).
3. Runs ``maskloop train`` with its defaults: held-out metrics of the base model and of the new
   version (the same click protocol as ``maskloop evaluate``), training time, step time.
4. Sanity on photos: ``maskloop evaluate`` on voc-mini with the base model and with the new version.

Not a test: times depend on the machine and on what else runs on it (the load average is printed).

Usage: .venv/bin/python bench/bench_train.py [--images 30] [--device cpu] [--json FILE] [--write-results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VOC_MINI = REPO.parent / "shared" / "datasets" / "voc-mini"


def maskloop(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "maskloop.cli", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"maskloop {' '.join(args)} failed:\n{done.stderr}")
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30, help="texture images to generate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated domain (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: maskloop train's)")
    parser.add_argument("--workdir", type=Path, default=None, help="project folder (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here (kept runs: bench/results/)")
    parser.add_argument("--write-results", action="store_true", help="append a section to bench/RESULTS.md")
    args = parser.parse_args()

    from maskloop.engine.texture_domain import write_texture_domain

    root = args.workdir or Path(tempfile.mkdtemp(prefix="maskloop-train-"))
    data = root / "images"
    coco = write_texture_domain(data, args.images, seed=args.seed)
    maskloop("import-coco", str(coco), "--data", str(data))
    t0 = time.perf_counter()
    embed = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "from maskloop.cli.context import StoreContext\n"
                "import sys\n"
                "class A: data, workdir, device = sys.argv[1], None, sys.argv[2]\n"
                "ctx = StoreContext(A())\n"
                "from maskloop.server.jobs.training import training_images\n"
                "[ctx.annotated_embedding(im) for im in training_images(ctx.store.conn)]\n"
            ),
            str(data),
            args.device,
        ],
        capture_output=True,
        text=True,
    )
    if embed.returncode != 0:
        sys.exit(embed.stderr)
    embed_s = time.perf_counter() - t0

    train_args = ["train", "--data", str(data), "--device", args.device, "--json"]
    if args.steps:
        train_args += ["--steps", str(args.steps)]
    t0 = time.perf_counter()
    report = json.loads(maskloop(*train_args).stdout)
    train_total_s = time.perf_counter() - t0

    voc = {}
    if (VOC_MINI / "annotations.json").is_file():
        for version in ("base", report["version"]):
            done = maskloop(
                "evaluate",
                "--coco",
                str(VOC_MINI / "annotations.json"),
                "--images",
                str(VOC_MINI / "JPEGImages"),
                "--data",
                str(data),
                "--model-version",
                version,
                "--max-clicks",
                "5",
                "--device",
                args.device,
                "--json",
            )
            summary = json.loads(done.stdout)
            voc[version] = {
                "miou@1": summary["miou_at_clicks"][0],
                "miou@5": summary["miou_at_clicks"][4],
                "objects": summary["objects"],
            }

    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end",
        "device": args.device,
        "command": "python bench/bench_train.py " + " ".join(sys.argv[1:]),
        "images": args.images,
        "train_masks": report["train"]["masks"],
        "train_images": report["train"]["images"],
        "holdout_masks": report["holdout"]["masks"],
        "holdout_images": report["holdout"]["images"],
        "embedding_seconds": round(embed_s, 1),
        "train_command_seconds": round(train_total_s, 1),
        "training_seconds": report["train"]["seconds"],
        "steps": report["train"]["steps"],
        "step_seconds_median": report["train"]["step_seconds_median"],
        "step_seconds_p95": report["train"]["step_seconds_p95"],
        "before": report["before"],
        "after": report["after"],
        "activated": report["activated"],
        "reason": report["reason"],
        "export_verify": report["export_verify"],
        "voc_mini": voc,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.write_results:
        write_results(result)
    return 0


def write_results(r: dict) -> None:
    b, a = r["before"], r["after"]
    rows = "\n".join(
        f"| {k} | {b[k]} | {a[k]} | {a[k] - b[k]:+.4f} |"
        for k in ("miou@1", "miou@3", "miou@5", "noc85", "noc90", "box_miou")
    )
    voc = r["voc_mini"]
    voc_line = (
        (
            f"voc-mini (photos, {voc['base']['objects']} objects, not trained on): mIoU@1 {voc['base']['miou@1']} -> "
            f"{voc[next(k for k in voc if k != 'base')]['miou@1']}, mIoU@5 {voc['base']['miou@5']} -> "
            f"{voc[next(k for k in voc if k != 'base')]['miou@5']} (base -> new version)."
        )
        if voc
        else "voc-mini: absent."
    )
    section = f"""
## Decoder fine-tuning on accepted masks (issue 9) — {r["date"]}

Machine: {r["machine"]}; device {r["device"]}. Command: `{r["command"]}`.
Texture domain: {r["images"]} images; trained on {r["train_masks"]} masks of {r["train_images"]} images,
held out {r["holdout_masks"]} masks of {r["holdout_images"]} images (split by image).

| held-out metric | base | new version | change |
|---|---|---|---|
{rows}

- training: {r["steps"]} steps in {r["training_seconds"]} s (a step: median {r["step_seconds_median"]} s,
  p95 {r["step_seconds_p95"]} s); the whole
  `maskloop train` (both held-out evaluations, training, ONNX export + verification): {r["train_command_seconds"]} s;
  embeddings precomputed before, {r["embedding_seconds"]} s.
- exported decoder vs its PyTorch weights: fp32 mean IoU {r["export_verify"]["fp32"]["mean_iou"]:.4f},
  max low-res logit diff {r["export_verify"]["fp32"]["max_low_res_diff"]:.2e}.
- gate: {r["reason"]}
- {voc_line}
"""
    path = REPO / "bench" / "RESULTS.md"
    path.write_text(path.read_text() + section)


if __name__ == "__main__":
    sys.exit(main())
