"""The brush's paint path in headless Chromium: what a pointer move costs while a stroke is drawn.

On a 1 MP (1224x816) and a 54 MP (9000x6000) picture (chelsea.jpg scaled up), the page clicks the
cat, takes the brush (B), then draws ``--strokes`` strokes (brush and eraser in turn) of
``--moves`` pointer moves each across the picture with Playwright's real mouse, like a person
dragging. Reported:

* ``move``: per pointer move, the page's handler plus the object layer's redraw it asks for (the
  stroke so far drawn over the mask): from a capturing listener on window before the page's own
  handler to a microtask queued after the redraw's. The issue's budget: <= 16 ms at p95.
* ``frame``: the interval between animation frames during the drags (the browser's raster and
  composite too; 16.7 ms at 60 Hz when nothing is dropped).
* ``commit``: button released -> the worker has drawn the mask with the stroke applied (the view's
  resolution), per stroke.
* ``accept``: Enter -> the mask with every stroke encoded at full resolution and saved (once).

Not a test: numbers depend on the machine and its load (printed).

Usage: .venv/bin/python bench/bench_brush.py [--strokes 12] [--moves 40] [--json FILE] [--write-results]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "web"))
sys.path.insert(0, str(REPO / "bench"))
from bench_web import cpu_busy, machine, stats, write_results  # noqa: E402
from web_harness import VIEWPORT, Annotator, launch_chromium, start_server  # noqa: E402

#: name -> (width, height): chelsea.jpg (451x300) scaled up.
PICTURES = {"cat_1mp.jpg": (1224, 816), "cat_54mp.jpg": (9000, 6000)}
CAT_POINT = (250 / 451, 150 / 300)  # between the cat's eyes, as a share of the width and height
BUDGET_MS = 16.0

#: Installed in the page: per pointer move the handler + redraw time, the frame intervals, while on.
PROBE = """() => {
  const probe = { on: false, moves: [], frames: [] };
  window.addEventListener("pointermove", () => {
    if (!probe.on) return;
    const t0 = performance.now();
    // The page's handler runs after this (stage, bubbling) and queues the redraw as a microtask;
    // a task-level listener below queues one after it.
    probe.t0 = t0;
  }, { capture: true });
  document.getElementById("stage").addEventListener("pointermove", () => {
    if (!probe.on || probe.t0 == null) return;
    const t0 = probe.t0;
    probe.t0 = null;
    queueMicrotask(() => queueMicrotask(() => probe.moves.push(performance.now() - t0)));
  });
  let last = null;
  const tick = (t) => {
    if (probe.on && last != null) probe.frames.push(t - last);
    last = probe.on ? t : null;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  window.__brushProbe = probe;
}"""


def make_pictures(folder: Path) -> None:
    folder.mkdir(parents=True)
    cat = Image.open(REPO / "sample_images" / "chelsea.jpg").convert("RGB")
    for name, size in PICTURES.items():
        cat.resize(size, Image.Resampling.BICUBIC).save(folder / name, quality=90)


def run_picture(browser, server, name: str, strokes: int, moves: int) -> dict:
    width, height = PICTURES[name]
    context = browser.new_context(viewport=VIEWPORT)
    try:
        a = Annotator(context.new_page(), server)
        t0 = time.perf_counter()
        a.goto(name)
        open_s = time.perf_counter() - t0
        a.page.evaluate(PROBE)
        a.click(CAT_POINT[0] * width, CAT_POINT[1] * height)
        a.key("b")
        commits = []
        for k in range(strokes):
            if k % 2:
                a.page.keyboard.press("e" if a.state("s.tool") == "brush" else "b")
            y = height * (0.15 + 0.7 * k / max(1, strokes - 1))
            x0, y0 = a.client_xy(width * 0.1, y)
            x1, y1 = a.client_xy(width * 0.9, y + height * 0.05)
            a.page.mouse.move(x0, y0)
            a.page.mouse.down()
            a.page.evaluate("window.__brushProbe.on = true")
            a.page.mouse.move(x1, y1, steps=moves)
            a.page.evaluate("window.__brushProbe.on = false")
            t = time.perf_counter()
            a.page.mouse.up()
            a.page.wait_for_function(f"() => maskloop.current.strokes && maskloop.current.strokes.length > {k}")
            a.idle()
            commits.append((time.perf_counter() - t) * 1000)
        probe = a.page.evaluate("({moves: window.__brushProbe.moves, frames: window.__brushProbe.frames})")
        a.key("Escape")
        t = time.perf_counter()
        saved = a.accept()
        accept_ms = (time.perf_counter() - t) * 1000
        assert not a.errors, a.errors
        return {
            "picture": name,
            "size": [width, height],
            "open_s": round(open_s, 1),
            "brush_radius_image_px": round(a.state("s.brushPx") / a.state("s.view.scale"), 1),
            "move": stats(probe["moves"]),
            "frame": stats(probe["frames"]),
            "commit": stats(commits),
            "accept_ms": round(accept_ms, 1),
            "saved_area": saved["area"],
        }
    finally:
        context.close()


def markdown(result: dict) -> str:
    lines = [
        "## Brush and eraser (paint path)",
        "",
        f"{result['date']} · {result['machine']} · load average {result['loadavg']} · CPU busy before {result['busy_before']}",
        "",
        f"`{result['command']}`: {result['strokes']} strokes (brush and eraser in turn) of {result['moves']} pointer moves each,"
        " across the picture, with Playwright's mouse; ms.",
        "",
        "| picture | move p50 | move p95 | ≤ 16 ms? | frame p50 | frame p95 | commit p50 | commit p95 | accept (full res) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["pictures"]:
        ok = "yes" if r["move"]["p95"] <= BUDGET_MS else "**no**"
        lines.append(
            f"| {r['picture']} ({r['size'][0]}×{r['size'][1]}) | {r['move']['p50']} | {r['move']['p95']} | {ok} |"
            f" {r['frame']['p50']} | {r['frame']['p95']} | {r['commit']['p50']} | {r['commit']['p95']} | {r['accept_ms']} |"
        )
    lines += [
        "",
        "move: the page's pointermove handler plus the object layer's redraw (the stroke so far over the mask), per move;"
        " frame: animation-frame interval during the drags; commit: button released → the worker has drawn the mask with"
        " the stroke; accept: Enter → every stroke applied at full resolution, encoded and saved.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=12)
    parser.add_argument("--moves", type=int, default=40, help="pointer moves per stroke")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "maskloop-bench-cache", help="decoder exports kept"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md's brush section")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="maskloop-brush-") as tmp:
        make_pictures(Path(tmp) / "data")
        server = start_server(Path(tmp) / "data", Path(tmp) / "work", args.cache)
        try:
            busy = round(cpu_busy(), 2)
            with sync_playwright() as p:
                browser = launch_chromium(p)
                pictures = [run_picture(browser, server, name, args.strokes, args.moves) for name in PICTURES]
                browser.close()
        finally:
            server.stop()
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": " ".join(["python", "bench/bench_brush.py", *sys.argv[1:]]),
        "strokes": args.strokes,
        "moves": args.moves,
        "busy_before": busy,
        "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "pictures": pictures,
    }
    for r in pictures:
        print(json.dumps(r))
    section = markdown(result)
    print(section)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.write_results:
        write_results(section, heading="## Brush and eraser (paint path)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
