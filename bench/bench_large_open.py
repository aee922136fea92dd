"""Where the time of opening a large image goes (issue 24): each server step on its own, in one
process, on a procedural JPEG of ``--side`` x ``--side`` (the one bench_pyramid.py makes).

Steps, in the order a cold open runs them: the scan's sha256 of the file and header read; the
overview (shrink-on-load, ``jobs/overview.py``); the pyramid's coarse levels cut from it (what the
first view waits for); the whole-image embedding from the overview (encoder only); a tile read
as a region at the top and at the bottom of the image (a JPEG is decoded down to the tile's last
row); the full pyramid (dzsave, background). Peak RSS growth of each step from /proc (VmHWM reset
before it).

Usage: .venv/bin/python bench/bench_large_open.py [--side 20000] [--work DIR] [--skip-full]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _kib(field: str) -> int:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status[field].split()[0])


def step(results: dict[str, Any], name: str, run: Callable[[], Any]) -> Any:
    """Run one step; record its seconds and how far the peak RSS rose above the RSS before it."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _kib("VmRSS")
    start = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - start
    results[name] = {"seconds": round(seconds, 3), "peak_rss_growth_mib": round((_kib("VmHWM") - before) / 1024, 1)}
    print(f"{name:28s} {seconds:7.2f} s  peak RSS +{results[name]['peak_rss_growth_mib']:.0f} MiB", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=20_000)
    parser.add_argument("--work", default=None, help="folder for the image (default: a temp folder)")
    parser.add_argument("--skip-full", action="store_true", help="do not cut the full pyramid")
    args = parser.parse_args()

    from support.large_images import write_large_jpeg

    from maskloop.digest import sha256_file
    from maskloop.exporter.regions import read_region
    from maskloop.exporter.vips_image import upright_size
    from maskloop.server.jobs.model import ModelService
    from maskloop.server.jobs.overview import model_input, overview
    from maskloop.server.jobs.pyramid import Geometry, cut_coarse, cut_full

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-large-open-"))
    (work / "data").mkdir(parents=True, exist_ok=True)
    source = work / "data" / f"noise-{args.side}.jpg"
    if not source.exists():
        write_large_jpeg(source, args.side, args.side, quality=85)
    model = ModelService("vit_t", None, "cpu", "auto", work / "onnx")
    embedder = model.embedder()  # loaded and run before: as in a server that has embedded an image
    for _ in range(2):  # onnxruntime's memory grows on its second run, then stays
        embedder.embed([np.zeros((768, 1024, 3), np.uint8)])
    out: dict[str, Any] = {"side": args.side, "file_mib": round(source.stat().st_size / 2**20, 1), "steps": {}}
    steps = out["steps"]
    step(steps, "scan: sha256 of the file", lambda: sha256_file(source))
    width, height = step(steps, "header (upright size)", lambda: upright_size(source))
    pyramids = work / "pyramids"
    shutil.rmtree(pyramids, ignore_errors=True)
    pixels = step(steps, "overview (shrink-on-load)", lambda: overview(source, width, height))
    geometry = Geometry(width, height)
    step(steps, "coarse levels from it", lambda: cut_coarse(source, geometry, pyramids / "coarse"))
    size = embedder.input_size
    step(steps, "embedding from the overview", lambda: model.embed([model_input(pixels, (height, width), size)]))
    step(steps, "tile read, top-left", lambda: read_region(source, (0, 0, size, size)))
    bottom = (width - size, height - size, width, height)
    step(steps, "tile read, bottom-right", lambda: read_region(source, bottom))
    if not args.skip_full:
        step(steps, "full pyramid (dzsave)", lambda: cut_full(source, pyramids / "full"))
    shutil.rmtree(pyramids, ignore_errors=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
