"""Large images (issue 24, the zoomable picture): first view, server memory, pan frame rate, and
libvips against Pillow for cutting the tile pyramid.

* ``cut``: each cutter in its own process on the same procedural JPEG (``--side`` x ``--side``),
  wall time and peak RSS (``os.wait4``'s ru_maxrss): libvips' coarse levels (what the first view
  waits for), libvips' full pyramid (dzsave, streaming), and Pillow (decode whole, then halve and
  cut each level) — the way a Pillow-only server would have to do it.
* ``page``: ``maskloop serve`` on that image; headless Chromium opens it ``--runs`` times cold
  (each a new copy: the same pixels under a new content hash, so it is cut and embedded anew;
  since 2026-12-05 12:00, before that hard links whose cached work by hash was deleted), then
  ``--runs`` times warm (cut already): first view = from ``page.goto`` to
  the first tiles of the level shown drawn (stage's data-tiles-drawn > 0). The server's RSS is
  sampled every 20 ms (/proc/PID/status) from its start to the end of the background full cut. The page's
  embedding request is blocked unless ``--embed`` (then the whole-image embedding, computed from
  the same shrink-on-load overview as the coarse levels, runs beside the first view and counts in
  the server's memory). The server runs with the default config: no ``MAX_IMAGE_PIXELS``. Then the view is panned by middle-drag for ~3 s at 1:1 zoom (full-resolution tiles)
  and the frame intervals are taken with requestAnimationFrame. Without ``--settle`` each cold
  open follows the last at once (its embedding and cuts still running: more work than 2 cores
  do in that time); with it each page is left open until it is ready for clicks (its embedding loaded), as a
  person who looks at an image before opening the next.

Usage: .venv/bin/python bench/bench_pyramid.py [--side 20000] [--runs 5] [--work DIR] [--skip-pillow] [--embed] [--settle]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "web"))

CUTTERS = {
    "vips-coarse": """
from pathlib import Path
from maskloop.server.jobs.pyramid import Geometry, cut_coarse
import pyvips
h = pyvips.Image.new_from_file(SRC)
cut_coarse(Path(SRC), Geometry(h.width, h.height), Path(OUT))
""",
    "vips-full": """
from pathlib import Path
from maskloop.server.jobs.pyramid import cut_full
cut_full(Path(SRC), Path(OUT))
""",
    "pillow-full": """
import os
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
img = Image.open(SRC).convert("RGB")  # the whole image in memory: 3 bytes a pixel
level = 0
while True:
    w, h = img.size
    for y in range(0, h, 512):
        for x in range(0, w, 512):
            d = os.path.join(OUT, str(level))
            os.makedirs(d, exist_ok=True)
            img.crop((x, y, min(x + 512, w), min(y + 512, h))).save(os.path.join(d, f"{x // 512}_{y // 512}.jpg"), quality=85)
    if max(w, h) == 1:
        break
    img = img.reduce(2) if min(w, h) > 1 else img.resize((max(1, -(-w // 2)), max(1, -(-h // 2))))
    level += 1
""",
}


def run_cutter(name: str, source: Path, out: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one cutter in a fresh process."""
    shutil.rmtree(out, ignore_errors=True)
    code = f"SRC = {str(source)!r}; OUT = {str(out)!r}\n" + CUTTERS[name]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{name} failed (status {status})")
    return seconds, usage.ru_maxrss / 1024


class RssSampler(threading.Thread):
    """Peak RSS (MiB) of one process (``peak``) and of it with its child processes (``peak_with_children``:
    the full pyramid cut runs in one), read from /proc every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.peak_with_children = 0.0
        self.stop = threading.Event()

    @staticmethod
    def _rss_mib(pid: int) -> float:
        text = Path(f"/proc/{pid}/status").read_text()
        return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("VmRSS:")), 0) / 1024

    def _children(self) -> list[int]:
        found: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*/children"):
            try:
                found += [int(c) for c in task.read_text().split()]
            except OSError:
                continue
        return found

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                own = self._rss_mib(self.pid)
            except OSError:  # the process is gone
                return
            children = 0.0
            for child in self._children():
                try:
                    children += self._rss_mib(child)
                except OSError:
                    continue
            self.peak = max(self.peak, own)
            self.peak_with_children = max(self.peak_with_children, own + children)
            time.sleep(0.02)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _new_name_of(server: object, source: Path, run: int) -> dict:
    """The catalogue record of a copy of ``source`` for ``run`` (listed after a rescan): the same
    pixels with a JPEG comment naming the run after the SOI marker, so a new content (sha256) that
    nothing cached by content (pyramid, embedding, thumbnail) knows, and the same decoding work."""
    copy = source.with_name(f"{source.stem}-copy{run}{source.suffix}")
    if not copy.exists():
        comment = f"maskloop bench copy {run}".encode()
        with open(source, "rb") as src, open(copy, "wb") as out:
            soi = src.read(2)
            assert soi == b"\xff\xd8", f"{source} is not a JPEG"
            out.write(soi + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment)
            shutil.copyfileobj(src, out, 16 << 20)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        listed = [im for im in server.get_json("/api/images") if im["file_name"] == copy.name]  # type: ignore[attr-defined]
        if listed:
            return listed[0]
        time.sleep(0.5)
    raise TimeoutError(f"{copy.name} was not listed")


def _settle(page: object) -> float:
    """Wait until the page is ready for clicks on the image it shows (its embedding loaded: the
    server's work for this open done, but the background full cut), then 1 s more; the seconds."""
    start = time.monotonic()
    page.wait_for_function("() => window.maskloop && window.maskloop.ready", timeout=120_000)  # type: ignore[attr-defined]
    time.sleep(1.0)
    return time.monotonic() - start


def bench_page(source: Path, work: Path, runs: int, embed: bool = False, settle: bool = False) -> dict:
    from playwright.sync_api import sync_playwright
    from support.live_server import LiveServer
    from web_harness import VIEWPORT, launch_chromium

    data = source.parent
    for old in data.glob(f"{source.stem}-*{source.suffix}"):  # an earlier run's copies: not hashed again at start
        old.unlink()
    workdir = work / "serve-work"
    shutil.rmtree(workdir, ignore_errors=True)
    env = {"MASKLOOP_PRECOMPUTE": "false"}
    cache = Path(tempfile.mkdtemp(prefix="bench-pyramid-cache-"))
    server = LiveServer(data, workdir, cache=cache, env=env)
    sampler = RssSampler(server.proc.pid)
    sampler.start()
    result: dict = {}
    try:
        image = next(im for im in server.get_json("/api/images") if im["file_name"] == source.name)
        assert image.get("pyramid"), image
        time.sleep(1.0)
        rss_before_open = sampler.peak
        first_views: list[float] = []
        page_first_views: list[float] = []
        peak_at_first_view: list[float] = []
        with sync_playwright() as p:
            browser = launch_chromium(p)
            warm_views: list[float] = []
            settled: list[float] = []
            for run in range(2 * runs):
                cold = run < runs  # cold: a content never opened (a fresh work folder, then new copies)
                if cold and run > 0:  # a new content: nothing kept by path or by sha256 serves it
                    image = _new_name_of(server, source, run)
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                if not embed:
                    page.route("**/embedding*", lambda route: route.abort())
                start = time.perf_counter()
                page.goto(f"{server.url}/#image={image['id']}")
                page.wait_for_function(
                    "() => Number(document.getElementById('stage').dataset.tilesDrawn) > 0", timeout=60_000
                )
                view_s = float(page.get_attribute("#stage", "data-first-view-ms")) / 1000
                if cold:
                    page_first_views.append(time.perf_counter() - start)
                    first_views.append(view_s)
                    peak_at_first_view.append(sampler.peak)
                else:
                    warm_views.append(view_s)
                if settle and cold:
                    settled.append(_settle(page))
                context.close()
            # the full pyramid: wait for the background cut, then pan at 1:1
            deadline = time.monotonic() + 900
            while not list((workdir / "pyramids").glob("*/full")) and time.monotonic() < deadline:
                time.sleep(0.5)
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.route("**/embedding*", lambda route: route.abort())
            page.goto(f"{server.url}/#image={image['id']}")
            page.wait_for_function("() => Number(document.getElementById('stage').dataset.tilesDrawn) > 0")
            page.locator("#stage").focus()
            page.keyboard.press("z")
            page.wait_for_timeout(1500)
            box = page.locator("#stage").bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.evaluate(
                "() => { window.__frames = []; const f = (t) => { window.__frames.push(t); "
                "if (!window.__stopFrames) requestAnimationFrame(f); }; requestAnimationFrame(f); }"
            )
            page.wait_for_timeout(1000)
            idle = page.evaluate("() => window.__frames.length")
            for sweep in range(3):  # ~1 s each: 300 px one way, back, and again, middle button held
                page.mouse.move(cx, cy)
                page.mouse.down(button="middle")
                page.mouse.move(cx + (300 if sweep % 2 == 0 else -300), cy + 120, steps=60)
                page.mouse.up(button="middle")
            frames = page.evaluate("() => { window.__stopFrames = true; return window.__frames; }")
            context.close()
            browser.close()
        idle_intervals = [b - a for a, b in zip(frames[:idle], frames[1:idle], strict=False)]
        frames = frames[idle:]
        intervals = [b - a for a, b in zip(frames, frames[1:], strict=False)]
        result = {
            "settle": settle,
            "settle_s": settled,
            "first_view_s": {
                "median": statistics.median(first_views),
                "p95": pct(first_views, 0.95),
                "runs": first_views,
            },
            "first_view_warm_s": {
                "median": statistics.median(warm_views),
                "p95": pct(warm_views, 0.95),
                "runs": warm_views,
            },
            "page_load_to_first_view_s": {"median": statistics.median(page_first_views), "runs": page_first_views},
            "server_rss_mib_before_open": rss_before_open,
            "server_peak_rss_mib_at_first_view": max(peak_at_first_view),
            "pan_frame_ms": {
                "median": statistics.median(intervals),
                "p95": pct(intervals, 0.95),
                "frames": len(intervals),
            },
            "idle_fps_median": 1000 / statistics.median(idle_intervals),
            "pan_fps_median": 1000 / statistics.median(intervals),
            "pan_fps_p95_frame": 1000 / pct(intervals, 0.95),
        }
    finally:
        server.stop()
        sampler.stop.set()
        shutil.rmtree(cache, ignore_errors=True)
    result["server_peak_rss_mib_through_full_cut"] = sampler.peak
    result["server_and_children_peak_rss_mib_through_full_cut"] = sampler.peak_with_children
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", default=None, help="folder for the image and the pyramids (default: a temp folder)")
    parser.add_argument("--skip-pillow", action="store_true")
    parser.add_argument("--skip-page", action="store_true")
    parser.add_argument("--embed", action="store_true", help="let the page's embedding request through")
    parser.add_argument(
        "--settle",
        action="store_true",
        help="leave each cold open's page until it is ready for clicks (its embedding loaded) before the next",
    )
    args = parser.parse_args()
    if args.settle and not args.embed:
        parser.error("--settle waits for the page's embedding: it needs --embed")
    from support.large_images import write_large_jpeg

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-pyramid-"))
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    source = data / f"noise-{args.side}.jpg"
    if not source.exists():
        t = time.perf_counter()
        write_large_jpeg(source, args.side, args.side, quality=85)
        print(f"made {source} ({source.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s", flush=True)
    out: dict = {"side": args.side, "file_mib": source.stat().st_size / 2**20, "cut": {}}
    for name in ("vips-coarse", "vips-full") + (() if args.skip_pillow else ("pillow-full",)):
        seconds, rss = run_cutter(name, source, work / f"cut-{name}")
        out["cut"][name] = {"seconds": seconds, "peak_rss_mib": rss}
        print(f"{name}: {seconds:.1f} s, peak RSS {rss:.0f} MiB", flush=True)
        shutil.rmtree(work / f"cut-{name}", ignore_errors=True)
    if not args.skip_page:
        out["page"] = bench_page(source, work, args.runs, args.embed, args.settle)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
