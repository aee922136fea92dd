"""The annotation page's speed in headless Chromium: click -> mask drawn, and open -> first mask.

Configurations, each on a small (chelsea.jpg, 451x300) and a large (large_coffee.jpg, 3000x2000)
image, with the same prompts (objects of 1 foreground click plus 4 refining clicks), clicked like
a person: the button held ``PRESS_MS`` (100 ms):

* ``maskloop, no guessing``: the page with speculative decoding off (``?guess=0``) -- decoder
  worker, onnxruntime-web WASM with navigator.hardwareConcurrency threads, the lowres decoder with
  a float16 embedding, the mask drawn from the 256x256 logits for the visible region only.
* ``maskloop, speculative``: the page as shipped: the decode starts at pointerdown.
* ``maskloop, hover preview``: the same with the hover preview on, the pointer resting
  ``REST_MS`` (300 ms) before each click; the clicks that start an object (the only ones a preview
  is made for) are reported apart.
* ``maskloop-int8`` (``--int8``): speculative with the int8 decoder (``?decoder=int8``).
* ``baseline``: configured like SAM's web demo (bench/pages/web_baseline.js): main thread, one
  thread, the fp32 decoder exported with ``maskloop export-onnx --variant full --embedding-dtype
  float32`` (full-resolution masks), float32 embedding, mask -> ImageData -> data URL -> <img>.

Latency of a prompt: from the pointerup event's timestamp to the mask drawn on the canvas
(``total``; ``frame`` adds the wait for the next animation frame); ``decode`` is the decoder run
alone (raw), reported beside the same decoder under native onnxruntime in the same run. Not a
test: numbers depend on the machine and on what else runs on it (the CPU load is printed).

Usage: .venv/bin/python bench/bench_web.py [--prompts 30] [--json FILE] [--before FILE] [--write-results]
       .venv/bin/python bench/bench_web.py --open-only 5 [--write-results]   # opening only
       .venv/bin/python bench/bench_web.py --tier-up-ab 3 [--write-results]  # with / without tier-up
       .venv/bin/python bench/bench_web.py --screenshot docs/screenshot.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "web"))
from web_harness import VIEWPORT, Annotator, LiveServer, copy_images, launch_chromium  # noqa: E402

BENCH = Path(__file__).resolve().parent
IMAGES = {
    "astronaut.jpg": "astronaut.jpg",
    "chelsea.jpg": "chelsea.jpg",
    "coffee.jpg": "coffee.jpg",
    "large_coffee.jpg": "large_coffee.jpg",
}
SERIES_IMAGES = ("chelsea.jpg", "large_coffee.jpg")
WARMUP_PROMPTS = 2
PRESS_MS = 100  # a click's button is held this long (people hold it ~80-150 ms)
REST_MS = 300  # the hover row: the pointer rests this long where it then clicks
#: The page's modes: query string and whether the hover preview is on.
MODES = {
    "plain": ("?guess=0", False, "maskloop, no guessing"),
    "speculative": ("", False, "maskloop, speculative"),
    "hover": ("", True, "maskloop, hover preview"),
}


def prompt_plan(width: int, height: int, n: int, seed: int = 0) -> list[tuple[bool, float, float, str]]:
    """n prompts as (new object?, x, y, button): per object one left click, then four clicks near
    it alternating background (right) and foreground (left)."""
    rng = np.random.default_rng(seed)
    plan = []
    while len(plan) < n:
        cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
        plan.append((True, cx, cy, "left"))
        for k in range(4):
            if len(plan) >= n:
                break
            dx, dy = rng.normal(0, 0.12, 2) * (width, height)
            x = float(np.clip(cx + dx, 1, width - 2))
            y = float(np.clip(cy + dy, 1, height - 2))
            plan.append((False, x, y, "right" if k % 2 == 0 else "left"))
    return plan


def stats(values: list[float]) -> dict:
    a = np.asarray(values, float)
    return {
        "n": len(a),
        "p50": round(float(np.percentile(a, 50)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
        "mean": round(float(a.mean()), 1),
        "max": round(float(a.max()), 1),
    }


def ensure_baseline_decoder(cache: Path) -> Path:
    """The demo-like decoder: fp32, full-resolution mask outputs, float32 embedding input."""
    out = cache / "baseline-full"
    if not (out / "decoder.onnx").is_file() or not (out / "manifest.json").is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "maskloop.cli",
                "export-onnx",
                "--variant",
                "full",
                "--embedding-dtype",
                "float32",
                "--out",
                str(out),
            ],
            check=True,
            cwd=REPO,
        )
    return out


def route_bench_files(context, baseline_dir: Path) -> None:
    """Serve bench/pages/web_baseline.* and the baseline decoder at /bench/ on the server's origin."""
    files = {
        "/bench/web_baseline.html": (BENCH / "pages" / "web_baseline.html", "text/html"),
        "/bench/web_baseline.js": (BENCH / "pages" / "web_baseline.js", "text/javascript"),
        "/bench/models/decoder.onnx": (baseline_dir / "decoder.onnx", "application/octet-stream"),
    }

    def handle(route):
        path = re.sub(r"^https?://[^/]+", "", route.request.url).split("?")[0]
        if path not in files:
            return route.fulfill(status=404, body="not found")
        file, mime = files[path]
        route.fulfill(
            status=200,
            body=file.read_bytes(),
            content_type=mime,
            headers={
                "Cross-Origin-Opener-Policy": "same-origin",
                "Cross-Origin-Embedder-Policy": "require-corp",
                "Cross-Origin-Resource-Policy": "same-origin",
                "Cache-Control": "no-store",
            },
        )

    context.route("**/bench/**", handle)


def human_click(
    a: Annotator, x: float, y: float, button: str = "left", rest_ms: float = 0, press_ms: float = PRESS_MS
) -> None:
    """Move to image pixel (x, y), rest ``rest_ms``, hold the button ``press_ms``; wait for the mask."""
    cx, cy = a.client_xy(x, y)
    n = a.state("s.latencyCount")
    a.page.mouse.move(cx, cy)
    if rest_ms:
        a.page.wait_for_timeout(rest_ms)
    a.page.mouse.down(button=button)
    a.page.wait_for_timeout(press_ms)
    a.page.mouse.up(button=button)
    a.page.wait_for_function(f"() => maskloop.latencyCount > {n}", timeout=120_000)
    a.idle()


def run_maskloop_series(
    browser,
    server: LiveServer,
    image: str,
    plan,
    mode: str = "speculative",
    decoder: str | None = None,
    extra_query: str = "",
    press_ms: float = PRESS_MS,
) -> dict:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    a = Annotator(page, server)
    query, hover, label = MODES[mode]
    if decoder:
        query += ("&" if query else "?") + f"decoder={decoder}"
    if extra_query:
        query += ("&" if query else "?") + extra_query
    page.goto(f"{server.url}/{query}#image={server.image_id(image)}")
    a.wait_ready()
    page.locator("#stage").focus()
    if hover:
        page.keyboard.press("v")
        assert a.state("s.hoverPreview"), "the hover preview did not turn on"
    warm = plan[:WARMUP_PROMPTS]
    for new, x, y, button in warm + plan:
        if new:
            page.keyboard.press("Escape")
            a.idle()
        human_click(a, x, y, button=button, rest_ms=REST_MS if hover else 0, press_ms=press_ms)
    page.wait_for_timeout(100)  # the last frame callback
    lat = a.state(f"s.latencies.slice(-{len(plan)})")  # the page keeps the last 1000
    assert len(lat) == len(plan), f"the page kept {len(lat)} of {len(plan)} timings"
    info = a.state("s.decoderInfo")
    precision = a.state("s.decoderPrecision")
    guesses = a.state("s.guesses")
    context.close()
    assert not a.errors, a.errors
    out = {
        "config": f"{label} ({precision}, {info['threads']} threads, worker)",
        "mode": mode,
        "query": query,
        "image": image,
        "total": stats([v["total"] for v in lat]),
        "frame": stats([v["frame"] for v in lat if v["frame"] is not None]),
        "decode": stats([v["decode"] for v in lat]),
        "render": stats([v["render"] for v in lat]),
        "guesses": guesses,
        "decodes": [round(v["decode"], 1) for v in lat],
        "totals": [round(v["total"], 1) for v in lat],
    }
    if hover:
        firsts = [v for (new, *_), v in zip(plan, lat, strict=True) if new]
        out["object_first_clicks"] = stats([v["total"] for v in firsts])
        out["object_first_clicks"]["previewed"] = sum(v.get("guess") == "hover" for v in firsts)
    return out


def first_click(browser, server: LiveServer, image: str, plan, repeats: int = 3) -> dict:
    """The first click after the page is ready, against the same page's next clicks (steady state).

    Each repeat: a fresh page (empty browser cache), wait until it is ready, then clicks like a
    person (speculative, as shipped) on the objects of ``plan``; the first latency is the first
    click, the median of the next ones (from the third on) the steady state.
    """
    firsts, steady, first_decode, steady_decode = [], [], [], []
    starts = [(x, y) for new, x, y, _ in plan if new]
    for _ in range(repeats):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        a = Annotator(page, server)
        page.goto(f"{server.url}/#image={server.image_id(image)}")
        a.wait_ready()
        page.locator("#stage").focus()
        for x, y in starts[:8]:
            page.keyboard.press("Escape")
            a.idle()
            human_click(a, x, y)
        lat = a.state("s.latencies")
        context.close()
        assert not a.errors, a.errors
        firsts.append(lat[0]["total"])
        steady.append(float(np.median([v["total"] for v in lat[2:]])))
        first_decode.append(lat[0]["decode"])
        steady_decode.append(float(np.median([v["decode"] for v in lat[2:]])))
    runs = lambda v: {"runs": [round(x, 1) for x in v], "median": round(float(np.median(v)), 1)}  # noqa: E731
    return {
        "image": image,
        "first": runs(firsts),
        "steady": runs(steady),
        # The decoder run alone: a press hides most of a steady click's decode, so its total is a
        # few ms and the totals' ratio says little about a first-run penalty; the decodes' does.
        "first_decode": runs(first_decode),
        "steady_decode": runs(steady_decode),
    }


def run_baseline_series(browser, server: LiveServer, image: str, plan, baseline_dir: Path) -> dict:
    context = browser.new_context(viewport=VIEWPORT)
    route_bench_files(context, baseline_dir)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    info = next(im for im in server.get_json("/api/images") if im["file_name"] == image)
    page.goto(f"{server.url}/bench/web_baseline.html?image={info['id']}")
    page.wait_for_function("() => window.baseline && (window.baseline.ready || window.baseline.error)", timeout=180_000)
    err = page.evaluate("window.baseline.error")
    assert not err, err
    box = page.locator("#overlay").bounding_box()
    sx, sy = box["width"] / info["width"], box["height"] / info["height"]
    warm = plan[:WARMUP_PROMPTS]
    for new, x, y, button in warm + plan:
        if new:
            page.evaluate("window.baseline.reset()")
        n = page.evaluate("window.baseline.latencies.length")
        page.mouse.click(box["x"] + x * sx, box["y"] + y * sy, button=button)
        page.wait_for_function(f"() => window.baseline.latencies.length > {n}", timeout=120_000)
    lat = page.evaluate("window.baseline.latencies")[len(warm) :]
    context.close()
    assert not errors, errors
    return {
        "config": "baseline (SAM web demo: fp32 full-res, 1 thread, main thread)",
        "image": image,
        "total": stats([v["total"] for v in lat]),
        "decode": stats([v["decode"] for v in lat]),
        "render": stats([v["render"] for v in lat]),
    }


def open_to_first_mask(browser, server: LiveServer, repeats: int = 3, timelines: list | None = None) -> dict:
    """ms from opening to the first mask drawn, clicking as soon as the image shows.

    cold page: navigation start -> mask (page, onnxruntime-web and decoder load included);
    next image: the image after the open one (its embedding was prefetched);
    other image: an image whose embedding the page has not fetched yet (computed on the server).
    ``timelines``: gets each cold page's ``maskloop.timeline()`` (ms since navigation start per
    step, "html" the HTML's arrival), "server" when the server decoded its first click, and the
    first decode's ms.
    """
    ids = {im["file_name"]: im["id"] for im in server.get_json("/api/images")}
    order = [im["file_name"] for im in server.get_json("/api/images")]
    out: dict[str, list[float]] = {"cold page": [], "next image (prefetched)": [], "other image (not prefetched)": []}

    def click_when_shown(a, file_name):
        image_id = ids[file_name]
        a.page.wait_for_function(f"() => maskloop.pictureShown && maskloop.image.id === {image_id}", timeout=60_000)
        w, h = a.state("[s.image.width, s.image.height]")
        a.click(w * 0.5, h * 0.55)

    for _ in range(repeats):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        a = Annotator(page, server)
        page.goto(f"{server.url}/#image={ids[order[0]]}")
        page.wait_for_function("() => window.maskloop && maskloop.image", timeout=120_000)
        click_when_shown(a, order[0])
        out["cold page"].append(a.state("s.firstMaskAt"))  # ms since navigation start
        page.wait_for_timeout(1500)  # the prefetch of the next images completes
        if timelines is not None:
            timeline = page.evaluate("maskloop.timeline ? maskloop.timeline() : {}")  # a page before it: none
            timeline["html"] = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")
            first = a.state("s.latencies[0]")
            timelines.append({"steps": timeline, "server": first.get("server", False), "decode": first["decode"]})
        page.evaluate("maskloop.openImage(1)")
        click_when_shown(a, order[1])
        out["next image (prefetched)"].append(a.state("s.firstMaskMs"))
        page.evaluate(f"maskloop.openImage({order.index('large_coffee.jpg')})")
        click_when_shown(a, "large_coffee.jpg")
        out["other image (not prefetched)"].append(a.state("s.firstMaskMs"))
        context.close()
    return {
        k: {"runs": [round(v, 1) for v in vals], "median": round(float(np.median(vals)), 1)} for k, vals in out.items()
    }


def breakdown(timelines: list[dict]) -> dict:
    """The cold page's steps, median ms since navigation start over the runs, in order."""
    names = {k for t in timelines for k in t["steps"]}
    steps = {k: float(np.median([t["steps"][k] for t in timelines if k in t["steps"]])) for k in names}
    return {
        "steps": {k: round(v, 1) for k, v in sorted(steps.items(), key=lambda kv: kv[1])},
        "first click on the server": sum(t["server"] for t in timelines),
        "first decode ms": round(float(np.median([t["decode"] for t in timelines])), 1),
        "runs": len(timelines),
    }


def open_ab(browser, servers: dict[str, LiveServer], plan, repeats: int) -> dict:
    """first_click and open_to_first_mask for each server's page, one run each in turn, ``repeats`` times."""
    keys = ("first", "steady", "first_decode", "steady_decode")
    out: dict[str, dict] = {name: {**{k: [] for k in keys}, "open": {}, "timelines": []} for name in servers}
    for _ in range(repeats):
        for name, server in servers.items():
            fc = first_click(browser, server, SERIES_IMAGES[0], plan, repeats=1)
            for k in keys:
                out[name][k] += fc[k]["runs"]
            for k, v in open_to_first_mask(browser, server, 1, out[name]["timelines"]).items():
                out[name]["open"].setdefault(k, []).extend(v["runs"])
    med = lambda v: round(float(np.median(v)), 1)  # noqa: E731
    return {
        name: {
            "first_click": {k: {"runs": r[k], "median": med(r[k])} for k in keys},
            "open_to_first_mask": {k: {"runs": v, "median": med(v)} for k, v in r["open"].items()},
            "cold_breakdown": breakdown(r["timelines"]),
        }
        for name, r in out.items()
    }


def open_markdown(result: dict) -> str:
    """The section of bench/RESULTS.md for ``--open-only``: opening the page and images, per variant."""
    lines = [
        "## Page: opening the page and images, first click (issue 12)",
        "",
        f"`{result['command']}` — {result['date']}, {result['machine']}; load average {result['loadavg']} "
        f"(before: {result['loadavg_before']}). Variants in turn, one fresh browser context per run; ms, "
        "median (runs). Cold page: navigation start → the first click's mask drawn, clicking as soon as "
        "the image shows; next image: opening the (prefetched) next image → its first mask; other image: "
        "large_coffee.jpg (3000×2000) → its first mask; first click: the first click after the page is "
        "ready vs the median of its 3rd–8th clicks (click → mask, and the decoder run alone: a press hides "
        "most of a steady click's decode).",
        "",
        "| variant | cold page | next image | other image | first click | steady click | first / steady "
        "| first decode / steady decode |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["variants"].items():
        o, fc = r["open_to_first_mask"], r["first_click"]
        cell = lambda v: f"{v['median']} ({', '.join(str(round(x)) for x in v['runs'])})"  # noqa: E731
        lines.append(
            f"| {name} | {cell(o['cold page'])} | {cell(o['next image (prefetched)'])} | "
            f"{cell(o['other image (not prefetched)'])} | {cell(fc['first'])} | {cell(fc['steady'])} | "
            f"{fc['first']['median'] / fc['steady']['median']:.2f}× | {fc['first_decode']['median']} / "
            f"{fc['steady_decode']['median']} ({fc['first_decode']['median'] / fc['steady_decode']['median']:.2f}×) |"
        )
    for name, r in result["variants"].items():
        b = r["cold_breakdown"]
        if len(b["steps"]) <= 1:
            continue  # a page without maskloop.timeline()
        lines += [
            "",
            f"Cold page, {name}: when each step first happened, ms since navigation start (median of "
            f"{b['runs']}; the first click decoded by the server in {b['first click on the server']} of them, "
            f"its decode {b['first decode ms']} ms):",
            "",
            " → ".join(f"{k} {round(v)}" for k, v in b["steps"].items()),
        ]
    lines.append("")
    return "\n".join(lines)


def native_decoder(server: LiveServer, image: str, runs: int = 30) -> dict:
    """The page's fp32 decoder under native onnxruntime (Python, CPU), one click, the model run
    only: what this CPU does at best without a browser."""
    from maskloop.exporter.decoder_runtime import OnnxDecoder, xy_image_to_model

    image_id = server.image_id(image)
    info = server.get_json(f"/api/images/{image_id}")
    hw = (info["height"], info["width"])
    xy = xy_image_to_model(np.array([[info["width"] * 0.5, info["height"] * 0.5]]), hw, 1024)
    feeds = {
        "image_embeddings": server.embedding(image_id).astype(np.float16),
        "point_coords": np.concatenate([xy, [[0, 0]]])[None].astype(np.float32),
        "point_labels": np.array([[1, -1]], np.float32),
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
    }
    out = {}
    for threads in (1, 2):
        session = OnnxDecoder(server.onnx_dir(), "fp32", threads=threads).session
        times = []
        for k in range(runs + 2):
            t0 = time.perf_counter()
            session.run(None, feeds)
            if k >= 2:
                times.append((time.perf_counter() - t0) * 1000)
        out[f"{threads} thread{'s' if threads > 1 else ''}"] = stats(times)
    # What the server's decode endpoint runs: the split pair, its prefix kept per image.
    split = OnnxDecoder(server.onnx_dir(), "fp32", threads=1, split=True)
    embedding = server.embedding(image_id)
    point = np.array([[info["width"] * 0.5, info["height"] * 0.5]])
    times = []
    for k in range(runs + 2):
        t0 = time.perf_counter()
        split.predict_low_res(embedding, hw, point, np.array([1]), image_key=image_id)
        if k >= 2:
            times.append((time.perf_counter() - t0) * 1000)
    out["split pair (the server's decode), 1 thread"] = stats(times)
    return out


def make_screenshot(browser, server: LiveServer, path: Path) -> None:
    """The page with a few accepted masks and one being prompted, 1280x800."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    a = Annotator(page, server)
    a.goto("coffee.jpg")
    for name, color in (("cup", "#ff5c8a"), ("spoon", "#2ecc71"), ("saucer", "#f5b041")):
        a.create_category(name, color)
    page.locator("#stage").focus()
    page.keyboard.press("1")
    a.drag_box(170, 15, 415, 300)
    a.accept()
    page.keyboard.press("2")
    a.click(365, 290)
    a.accept()
    page.keyboard.press("3")
    a.click(110, 290)
    a.click(290, 200, button="right")
    a.click(365, 285, button="right")
    a.accept()
    page.keyboard.press("1")
    a.click(225, 265)  # the handle, one click: the three candidates show
    page.mouse.move(*a.client_xy(600, 395))
    page.wait_for_timeout(200)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    context.close()


def cpu_busy(seconds: float = 2.0) -> float:
    """Share of CPU time (0..1) spent by anything on the machine over ``seconds`` (Linux)."""

    def sample():
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]

    try:
        t1, i1 = sample()
        time.sleep(seconds)
        t2, i2 = sample()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return 1 - (i2 - i1) / max(1, t2 - t1)


def wait_quiet(limit: float, timeout: float) -> float:
    """Wait (up to ``timeout`` s) until other work leaves the CPUs mostly idle; the last reading."""
    deadline = time.monotonic() + timeout
    busy = cpu_busy()
    while busy > limit and time.monotonic() < deadline:
        busy = cpu_busy()
    return round(busy, 2)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, {chromium or 'chromium'}"


def _row(s: dict) -> str:
    return (
        f"| {s['config']} | {s['image']} | {s['total']['p50']} | {s['total']['p95']} | "
        f"{s['decode']['p50']} | {s['decode']['p95']} | {s['render']['p50']} |"
    )


def _series(result: dict, image: str, prefix: str) -> dict | None:
    return next((s for s in result["series"] if s["image"] == image and s["config"].startswith(prefix)), None)


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def markdown(result: dict, before: dict | None = None) -> str:
    """The ``## Page`` section of bench/RESULTS.md; ``before``: the same bench's JSON of the page
    before speculative decoding (issue 12), for the raw-decode and start-up comparisons."""
    lines = [
        "## Page",
        "",
        f"`{result['command']}` — {result['date']}, {result['machine']}. CPU busy (0..1, all processes) just "
        f"before each series: {result['load_before']}; load average {result.get('loadavg', '?')}. Latency: pointerup → "
        f"mask drawn on the canvas, {result['prompts']} prompts per row (objects of 1 click + 4 refining "
        f"clicks), after 2 warm-up prompts, each click's button held {PRESS_MS} ms (the hover row: the "
        f"pointer rests {REST_MS} ms first); p50/p95 in ms.",
        "",
        "| configuration | image | click → mask p50 | p95 | decoder p50 | p95 | drawing p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    load = float(str(result.get("loadavg", "0")).split()[0])
    cpus = (
        int(re.search(r"^(\d+) CPUs", result["machine"]).group(1)) if re.search(r"^\d+ CPUs", result["machine"]) else 0
    )
    if cpus and load > cpus:
        lines[2:2] = [
            f"**The machine was oversubscribed** (load average {load:.1f} on {cpus} CPUs, other sessions' "
            "tests and benchmarks): every decode ran several times slower than on a quiet machine, so the "
            "absolute numbers and the targets below say little; compare rows of the same run.",
            "",
        ]
    lines += [_row(s) for s in result["series"]]
    for s in result["series"]:
        first = s.get("object_first_clicks")
        if first:
            lines.append(
                f"| ↳ the hover row's clicks that start an object ({first['previewed']} of {first['n']} previewed) "
                f"| {s['image']} | {first['p50']} | {first['p95']} | | | |"
            )
    native = result.get("native_decoder", {})
    lines += [
        "",
        "The same fp32 decoder under native onnxruntime (Python, same run), one click, p50/p95 ms: "
        + "; ".join(f"{k} {v['p50']}/{v['p95']}" for k, v in native.items())
        + ".",
        "",
        "Targets (issue 12):",
    ]
    for image in SERIES_IMAGES:
        spec = _series(result, image, "maskloop, speculative")
        hover = _series(result, image, "maskloop, hover")
        base = _series(result, image, "baseline")
        if spec:
            lines.append(
                f"- {image}: speculative click → mask p95 {spec['total']['p95']} ms ≤ 100: "
                f"{_met(spec['total']['p95'] <= 100)}"
                + (
                    f"; p95 ratio to the SAM-demo baseline {spec['total']['p95'] / base['total']['p95']:.2f} ≤ 0.4: "
                    f"{_met(spec['total']['p95'] <= 0.4 * base['total']['p95'])}"
                    if base
                    else ""
                )
            )
        if hover and hover.get("object_first_clicks"):
            p95 = hover["object_first_clicks"]["p95"]
            lines.append(f"- {image}: click where the hover preview was ready, p95 {p95} ms ≤ 30: {_met(p95 <= 30)}")
        old = _series(before, image, "maskloop (fp32") if before else None
        if spec and old:
            ratio = spec["decode"]["p95"] / old["decode"]["p95"]
            lines.append(
                f"- {image}: raw decode p95 {spec['decode']['p95']} ms vs {old['decode']['p95']} before "
                f"({ratio:.2f}×) ≤ 0.8×: {_met(ratio <= 0.8)}"
            )
    fc = result.get("first_click")
    if fc:
        ratio = fc["first"]["median"] / fc["steady"]["median"]
        lines.append(
            f"- first click after the page is ready ({fc['image']}) {fc['first']['median']} ms vs steady state "
            f"{fc['steady']['median']} ms ({ratio:.2f}×; runs {fc['first']['runs']} / {fc['steady']['runs']}) "
            f"≤ 1.2×: {_met(ratio <= 1.2)}"
        )
        if "first_decode" in fc:
            d = fc["first_decode"]["median"] / fc["steady_decode"]["median"]
            lines.append(
                f"  - its decoder run alone: {fc['first_decode']['median']} ms vs {fc['steady_decode']['median']} ms "
                f"({d:.2f}×; runs {fc['first_decode']['runs']} / {fc['steady_decode']['runs']})"
            )
    cold = result["open_to_first_mask"]["cold page"]["median"]
    was = f" (before: {before['open_to_first_mask']['cold page']['median']} ms)" if before else ""
    lines.append(f"- cold page → first mask p50 {cold} ms{was} ≤ 1500: {_met(cold <= 1500)}")
    lines += [
        "",
        "Opening an image → first mask drawn (embeddings precomputed on the server; click as soon as the "
        "image shows; median of 3, ms):",
        "",
    ]
    for k, v in result["open_to_first_mask"].items():
        was = (
            f"; before {before['open_to_first_mask'][k]['median']}"
            if before and k in before["open_to_first_mask"]
            else ""
        )
        lines.append(f"- {k}: {v['median']} (runs {', '.join(str(r) for r in v['runs'])}{was})")
    if before:
        lines += [
            "",
            f"Before (the page without guessing, warm start or parallel loading, same bench: `{before['command']}`, "
            f"{before['date']}, CPU busy {before['load_before']}):",
            "",
            "| configuration | image | click → mask p50 | p95 | decoder p50 | p95 | drawing p50 |",
            "|---|---|---|---|---|---|---|",
            *[_row(s) for s in before["series"]],
        ]
    lines.append("")
    return "\n".join(lines)


def write_results(section: str, path: Path = BENCH / "RESULTS.md", heading: str = "## Page") -> None:
    """Replace (or append) the ``heading`` section of bench/RESULTS.md, leaving the others alone."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=30)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "maskloop-bench-cache",
        help="decoder exports and embeddings kept between runs",
    )
    parser.add_argument("--json", type=Path, help="write the numbers here too (kept runs: bench/results/)")
    parser.add_argument("--write-results", action="store_true", help="update the '## Page' section of bench/RESULTS.md")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--int8", action="store_true", help="add a row for the int8 decoder")
    parser.add_argument(
        "--before",
        type=Path,
        help="a --json of this bench shown beside the numbers (the page before issue 12: bench/results/web_2026-11-27_before_issue12_cpu.json)",
    )
    parser.add_argument("--screenshot", type=Path, help="only take a screenshot of the page with masks to this file")
    parser.add_argument(
        "--from-json", type=Path, help="only print (and with --write-results write) the table of a saved --json file"
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=0.25,
        help="before each series wait until the CPUs are at most this busy (0..1; default 0.25)",
    )
    parser.add_argument("--quiet-timeout", type=float, default=180, help="but no longer than this (s)")
    parser.add_argument(
        "--open-only",
        type=int,
        metavar="N",
        help="only the cold page, opening images and the first click, N runs (written as their own section)",
    )
    parser.add_argument(
        "--compare-web",
        type=Path,
        metavar="DIR",
        help="with --open-only: also a page served from DIR (e.g. main's web/, with node_modules), runs alternating",
    )
    parser.add_argument(
        "--tier-up-ab",
        type=int,
        metavar="ROUNDS",
        help="only the speculative series with and without the fresh decoder's tier-up runs, ROUNDS times",
    )
    args = parser.parse_args()
    if args.open_only:
        return open_only(args)
    if args.tier_up_ab:
        return tier_up_ab(args)

    before = json.loads(args.before.read_text()) if args.before else None
    if args.from_json:
        section = markdown(json.loads(args.from_json.read_text()), before)
        print(section)
        if args.write_results:
            write_results(section)
        return 0

    from playwright.sync_api import sync_playwright

    args.cache.mkdir(parents=True, exist_ok=True)
    baseline_dir = None if args.skip_baseline or args.screenshot else ensure_baseline_decoder(args.cache)
    with tempfile.TemporaryDirectory(prefix="maskloop-bench-") as tmp:
        data = copy_images(Path(tmp) / "data", IMAGES)
        server = LiveServer(data, Path(tmp) / "work", cache=args.cache)
        try:
            server.wait_for_embeddings()
            with sync_playwright() as p:
                browser = launch_chromium(p)
                if args.screenshot:
                    make_screenshot(browser, server, args.screenshot)
                    print(f"wrote {args.screenshot}")
                    return 0
                result = {
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "machine": machine(),
                    "command": " ".join(["python", "bench/bench_web.py", *sys.argv[1:]]),
                    "prompts": args.prompts,
                    "load_before": [],
                    "series": [],
                }
                for image in SERIES_IMAGES:
                    info = next(im for im in server.get_json("/api/images") if im["file_name"] == image)
                    plan = prompt_plan(info["width"], info["height"], args.prompts)
                    runs = [lambda mode=mode: run_maskloop_series(browser, server, image, plan, mode) for mode in MODES]
                    if args.int8:
                        runs.append(lambda: run_maskloop_series(browser, server, image, plan, decoder="int8"))
                    if baseline_dir is not None:
                        runs.append(lambda: run_baseline_series(browser, server, image, plan, baseline_dir))
                    for run in runs:
                        result["load_before"].append(wait_quiet(args.quiet, args.quiet_timeout))
                        series = run()
                        result["series"].append(series)
                        print(json.dumps(series), flush=True)
                result["load_before"].append(wait_quiet(args.quiet, args.quiet_timeout))
                info = next(im for im in server.get_json("/api/images") if im["file_name"] == SERIES_IMAGES[0])
                plan = prompt_plan(info["width"], info["height"], 40, seed=1)
                result["first_click"] = first_click(browser, server, SERIES_IMAGES[0], plan)
                print(json.dumps(result["first_click"]), flush=True)
                result["load_before"].append(wait_quiet(args.quiet, args.quiet_timeout))
                result["open_to_first_mask"] = open_to_first_mask(browser, server)
                browser.close()
                result["load_before"].append(wait_quiet(args.quiet, args.quiet_timeout))
                result["native_decoder"] = native_decoder(server, SERIES_IMAGES[0])
                result["loadavg"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
                print(json.dumps(result["open_to_first_mask"]), flush=True)
        finally:
            server.stop()
    section = markdown(result, before)
    print(section)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.write_results:
        write_results(section)
    return 0


def tier_up_ab(args) -> int:
    """``--tier-up-ab ROUNDS``: the speculative series on chelsea.jpg without the fresh decoder's
    tier-up runs (``?warm=0``) and as shipped, in turn, ROUNDS times; a fresh page each."""
    from playwright.sync_api import sync_playwright

    args.cache.mkdir(parents=True, exist_ok=True)
    loadavg_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    variants = {"without tier-up (?warm=0)": "warm=0", "as shipped (8 tier-up runs)": ""}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="maskloop-bench-") as tmp:
        data = copy_images(Path(tmp) / "data", IMAGES)
        server = LiveServer(data, Path(tmp) / "work", cache=args.cache)
        try:
            server.wait_for_embeddings()
            image = SERIES_IMAGES[0]
            info = next(im for im in server.get_json("/api/images") if im["file_name"] == image)
            plan = prompt_plan(info["width"], info["height"], args.prompts)
            with sync_playwright() as p:
                browser = launch_chromium(p)
                for _ in range(args.tier_up_ab):
                    for name, query in variants.items():
                        wait_quiet(args.quiet, args.quiet_timeout)
                        series = run_maskloop_series(browser, server, image, plan, extra_query=query)
                        runs[name].append(series)
                        print(name, series["total"], series["decode"], flush=True)
                browser.close()
        finally:
            server.stop()
    lines = [
        "## Page: a fresh decoder's tier-up runs (issue 12)",
        "",
        f"`{' '.join(['python', 'bench/bench_web.py', *sys.argv[1:]])}` — "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, {machine()}; load average {loadavg_before} before, "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} after. The speculative series on {SERIES_IMAGES[0]} "
        f"({args.prompts} prompts after 2 warm-up prompts, a fresh page each run, the variants in turn); "
        "click → mask and decoder run alone, ms per run (p50 / p95), and the decodes of the first object's "
        "5 clicks.",
        "",
        "| variant | click → mask p50 / p95 per run | decode p50 / p95 per run | first object's decodes |",
        "|---|---|---|---|",
    ]
    for name, series in runs.items():
        totals = ", ".join(f"{s['total']['p50']} / {s['total']['p95']}" for s in series)
        decodes = ", ".join(f"{s['decode']['p50']} / {s['decode']['p95']}" for s in series)
        firsts = "; ".join(" ".join(str(round(d)) for d in s["decodes"][:5]) for s in series)
        lines.append(f"| {name} | {totals} | {decodes} | {firsts} |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "loadavg_before": loadavg_before}, indent=2))
    if args.write_results:
        write_results(section, heading="## Page: a fresh decoder's tier-up runs (issue 12)")
    return 0


def open_only(args) -> int:
    """``--open-only N``: the opening numbers of this page (and of ``--compare-web``'s) in turn."""
    from playwright.sync_api import sync_playwright

    args.cache.mkdir(parents=True, exist_ok=True)
    loadavg_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="maskloop-bench-") as tmp:
        data = copy_images(Path(tmp) / "data", IMAGES)
        servers = {"this page": LiveServer(data, Path(tmp) / "work", cache=args.cache)}
        try:
            if args.compare_web:
                env = {"MASKLOOP_WEB_DIR": str(args.compare_web.resolve())}
                servers[f"page of {args.compare_web}"] = LiveServer(
                    data, Path(tmp) / "work-compare", cache=args.cache, env=env
                )
            for server in servers.values():
                server.wait_for_embeddings()
            info = next(
                im for im in servers["this page"].get_json("/api/images") if im["file_name"] == SERIES_IMAGES[0]
            )
            plan = prompt_plan(info["width"], info["height"], 40, seed=1)
            with sync_playwright() as p:
                browser = launch_chromium(p)
                variants = open_ab(browser, servers, plan, args.open_only)
                browser.close()
        finally:
            for server in servers.values():
                server.stop()
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": " ".join(["python", "bench/bench_web.py", *sys.argv[1:]]),
        "loadavg_before": loadavg_before,
        "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "variants": variants,
    }
    section = open_markdown(result)
    print(section)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.write_results:
        write_results(section, heading="## Page: opening the page and images, first click (issue 12)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
