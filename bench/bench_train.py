"""The data engine learns: `maskloop train --minutes M` on a domain where SAM is weak, gated.

1. Writes the texture domain (``engine/texture_domain.py``: scikit-image's brick / grass / gravel
   photographs, objects that differ from their background by texture alone, exact masks) with the
   tuning seed into a fresh project and imports its masks as accepted annotations; embeddings are
   precomputed (timed apart: the server has them cached when people annotate).
2. For each ``--minutes`` value, a fresh copy of the project runs ``maskloop train --minutes M``
   (same seed): its report holds the gate's table on its own held-out split.
3. Every version and the base model are then measured with ``maskloop evaluate`` (10 clicks) on
   texture images of seeds never used while tuning the recipe (``--heldout-seed``), and on
   voc-mini (photos; a check set only: nothing trains or tunes on it).

Not a test: times depend on the machine and on what else runs on it (the load average is printed).

Usage: .venv/bin/python bench/bench_train.py [--minutes 10 20] [--images 24] [--json FILE] [--write-results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VOC_MINI = REPO.parent / "shared" / "datasets" / "voc-mini"
KEYS = [f"miou@{k}" for k in range(1, 11)] + ["noc85", "noc90", "box_miou"]


def maskloop(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "maskloop.cli", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"maskloop {' '.join(args)} failed:\n{done.stderr}")
    return done


def evaluate(coco: Path, images: Path, project: Path, version: str) -> dict[str, Any]:
    """``maskloop evaluate`` (10 clicks) of a project's version: the gate's numbers."""
    summary = json.loads(
        maskloop(
            "evaluate", "--coco", str(coco), "--images", str(images), "--data", str(project),
            "--model-version", version, "--max-clicks", "20", "--json",
        ).stdout
    )  # fmt: skip
    curve = summary["miou_at_clicks"]
    out = {f"miou@{k}": curve[k - 1] for k in range(1, 11)}
    out.update({"noc85": summary["noc85"], "noc90": summary["noc90"], "box_miou": summary["box_miou"]})
    out["objects"] = summary["objects"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 20.0], help="training budgets")
    parser.add_argument("--images", type=int, default=24, help="texture images of the project (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="the domain's tuning seed (default: %(default)s)")
    parser.add_argument("--heldout-seed", type=int, default=7, help="a seed never tuned on (default: %(default)s)")
    parser.add_argument("--heldout-images", type=int, default=12, help="its images (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=None, help="where projects go (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here (kept runs: bench/results/)")
    parser.add_argument("--write-results", action="store_true", help="append a section to bench/RESULTS.md")
    args = parser.parse_args()

    from maskloop.engine.texture_domain import write_texture_domain

    root = args.workdir or Path(tempfile.mkdtemp(prefix="maskloop-train-"))
    template = root / "template"
    coco = write_texture_domain(template, args.images, seed=args.seed)
    maskloop("import-coco", str(coco), "--data", str(template))
    t0 = time.perf_counter()
    maskloop("embed", "--data", str(template))
    embed_s = time.perf_counter() - t0
    unseen = root / "unseen"
    unseen_coco = write_texture_domain(unseen, args.heldout_images, seed=args.heldout_seed, prefix="unseen")

    runs: list[dict[str, Any]] = []
    for minutes in args.minutes:
        project = root / f"minutes-{minutes:g}"
        shutil.copytree(template, project)
        t0 = time.perf_counter()
        report = json.loads(maskloop("train", "--data", str(project), "--minutes", f"{minutes:g}", "--json").stdout)
        run = {"minutes": minutes, "command_seconds": round(time.perf_counter() - t0, 1), "report": report}
        run["unseen"] = {v: evaluate(unseen_coco, unseen, project, v) for v in ("base", report["version"])}
        if (VOC_MINI / "annotations.json").is_file():
            run["voc_mini"] = {
                v: evaluate(VOC_MINI / "annotations.json", VOC_MINI, project, v) for v in ("base", report["version"])
            }
        runs.append(run)
        print(f"{minutes:g} min: {report['reason']}", file=sys.stderr, flush=True)

    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end",
        "command": "python bench/bench_train.py " + " ".join(sys.argv[1:]),
        "images": args.images,
        "seed": args.seed,
        "heldout_seed": args.heldout_seed,
        "embedding_seconds": round(embed_s, 1),
        "runs": runs,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.write_results:
        write_results(result)
    return 0


def table(columns: dict[str, dict[str, Any]]) -> str:
    """A markdown table: one row per gate metric, one column per named metrics dict."""
    names = list(columns)
    lines = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key in KEYS + ["generic_miou@1", "generic_miou@5"]:
        if all(key in (c or {}) for c in columns.values()):
            lines.append(f"| {key} | " + " | ".join(str(columns[n][key]) for n in names) + " |")
    return "\n".join(lines)


def write_results(r: dict[str, Any]) -> None:
    parts = [
        f"\n## Decoder fine-tuning: `maskloop train --minutes M` on the texture domain (issue 22) — {r['date']}\n",
        f"Machine: {r['machine']}. Command: `{r['command']}`. Texture domain seed {r['seed']}, {r['images']} images;",
        f"unseen set: seed {r['heldout_seed']} (never used while tuning the recipe). Embeddings precomputed: "
        f"{r['embedding_seconds']} s.\n",
    ]
    for run in r["runs"]:
        rep = run["report"]
        name = rep["version"]
        t, sel = rep["train"], rep["selection"]
        parts.append(
            f"### {run['minutes']:g} minutes: {t['steps']} steps, training {t['seconds']} s, whole command "
            f"{run['command_seconds']} s; best checkpoint step {sel.get('chosen_step')} "
            f"(chosen on {sel['masks']} masks of {sel['images']} images, the {sel['split']} split)\n"
        )
        parts.append(
            f"Gate on its held-out split ({rep['holdout']['masks']} masks of {rep['holdout']['images']} images): "
            f"**{rep['reason']}**\n"
        )
        rows = ["| metric | base | new | change | limit | ok |", "|---|---|---|---|---|---|"]
        for row in rep["gate"]["rows"]:
            mark = "**" if row["metric"] == rep["gate"]["decided_by"] else ""
            rows.append(
                f"| {mark}{row['label']}{mark} | {row['base']} | {row['new']} | {row['change']} | {row['limit']} | "
                f"{'✔' if row['ok'] else '✘'} |"
            )
        parts.append("\n".join(rows) + "\n")
        parts.append(f"Unseen texture seed ({run['unseen']['base']['objects']} objects), base vs {name}:\n")
        parts.append(table({"base": run["unseen"]["base"], name: run["unseen"][name]}) + "\n")
        if "voc_mini" in run:
            parts.append(f"voc-mini ({run['voc_mini']['base']['objects']} objects, photos), base vs {name}:\n")
            parts.append(table({"base": run["voc_mini"]["base"], name: run["voc_mini"][name]}) + "\n")
    path = REPO / "bench" / "RESULTS.md"
    path.write_text(path.read_text() + "\n".join(parts))


if __name__ == "__main__":
    sys.exit(main())
