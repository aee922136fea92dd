"""Decoder graph variants timed in turn in headless Chromium's onnxruntime-web (WASM, 2 threads).

Issue 12 asked to keep the graph changes that measure faster in WASM and drop the others. Graphs
(each with the float16 embedding input and 256x256 outputs the page uses):

* ``single``: ``decoder.onnx`` as exported before issue 12 (one graph per prompt);
* ``prompt``: the per-prompt half of the split decoder (exporter/decoder_prefix.py), fed the
  prefix's outputs (the prefix runs once, its time reported apart): attention over the image
  tokens evaluated on the token side, the upscaling as channel-last matmuls (what the page runs);
* ``prompt_convtranspose``: the same with SAM's two ConvTranspose2d layers on the [1,C,64,64] grid;
* ``--extra NAME=DIR``: a prefix + prompt pair exported before (e.g. by an older commit) into DIR.

Runs alternate between the graphs (one prompt without and one with a fed-back mask each round),
so a busy machine slows them alike; p50/p95 in ms.

Usage: .venv/bin/python bench/bench_decoder_graphs.py [--rounds 30] [--threads 2] [--extra NAME=DIR]
       [--json FILE] [--write-results]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "web"))
from bench_web import machine, write_results  # noqa: E402
from web_harness import VIEWPORT, LiveServer, copy_images, launch_chromium  # noqa: E402

BENCH = Path(__file__).resolve().parent
SECTION = "## Decoder graphs in WASM (issue 12)"


def export_graphs(out: Path, extra: dict[str, Path]) -> dict[str, tuple[Path, Path | None]]:
    """Each series' (graph, prefix graph or None), exported into ``out``; ``extra`` series are
    folders holding a ``decoder_prefix.onnx`` + ``decoder_prompt.onnx`` pair exported before."""
    from maskloop.exporter.decoder_prefix import PREFIX_FILE, PROMPT_FILE, export_prefix_pair
    from maskloop.exporter.onnx_export import export_onnx_file
    from maskloop.exporter.registry import load_sam

    model = load_sam("vit_t")
    out.mkdir(parents=True, exist_ok=True)
    export_onnx_file(model, out / "single.onnx", variant="lowres", embedding_dtype="float16")
    graphs: dict[str, tuple[Path, Path | None]] = {"single": (out / "single.onnx", None)}
    for name, upscaling in (("prompt", "tokens"), ("prompt_convtranspose", "convtranspose")):
        prefix, prompt = export_prefix_pair(model, out / name, upscaling=upscaling)
        graphs[name] = (prompt, prefix)
    for name, folder in extra.items():
        graphs[name] = (folder / PROMPT_FILE, folder / PREFIX_FILE)
    return graphs


def native_times(graphs: dict[str, tuple[Path, Path | None]], rounds: int, threads: int) -> dict[str, dict]:
    """The same graphs and feeds under native onnxruntime (CPU provider), in turn; p50/p95 ms."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    emb = (np.arange(256 * 64 * 64, dtype=np.uint16) % 97 + 0x2E66).view(np.float16).reshape(1, 256, 64, 64)
    mask = (((np.arange(256 * 256) * 7919) % 13) - 6).astype(np.float32).reshape(1, 1, 256, 256)
    sessions = []
    for graph, prefix in graphs.values():
        side = {}
        if prefix is not None:
            pre = ort.InferenceSession(str(prefix), options, providers=["CPUExecutionProvider"])
            side = dict(zip([o.name for o in pre.get_outputs()], pre.run(None, {"image_embeddings": emb})))
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}
        feeds = {
            "image_embeddings": emb,
            "point_coords": np.array([[[500, 400], [0, 0]]], np.float32),
            "point_labels": np.array([[1, -1]], np.float32),
            "mask_input": mask,
            **side,
        }
        sessions.append((session, {k: v for k, v in feeds.items() if k in names}))
    times = [{"nomask": [], "mask": []} for _ in sessions]
    for k in range(rounds + 2):
        for with_mask in (False, True):
            for (session, feeds), t in zip(sessions, times, strict=True):
                feeds = {**feeds, "has_mask_input": np.array([float(with_mask)], np.float32)}
                t0 = time.perf_counter()
                session.run(None, feeds)
                if k >= 2:
                    t["mask" if with_mask else "nomask"].append((time.perf_counter() - t0) * 1000)
    return {name: _percentiles(t) for name, t in zip(graphs, times, strict=True)}


def _percentiles(t: dict[str, list[float]]) -> dict:
    return {
        k: {"p50": round(float(np.percentile(v, 50)), 1), "p95": round(float(np.percentile(v, 95)), 1)}
        for k, v in t.items()
    }


def serve_bench(context, files: dict[str, Path]) -> None:
    def handle(route):
        path = re.sub(r"^https?://[^/]+", "", route.request.url).split("?")[0]
        name = path.rsplit("/", 1)[-1]
        if name == "graphs.html":
            body, mime = (
                b'<!doctype html><script type="module" src="/bench/web_decoder_graphs.js"></script>',
                "text/html",
            )
        elif name == "web_decoder_graphs.js":
            body, mime = (BENCH / "pages" / name).read_bytes(), "text/javascript"
        else:
            body, mime = files[name].read_bytes(), "application/octet-stream"
        route.fulfill(
            status=200,
            body=body,
            content_type=mime,
            headers={
                "Cross-Origin-Opener-Policy": "same-origin",
                "Cross-Origin-Embedder-Policy": "require-corp",
                "Cross-Origin-Resource-Policy": "same-origin",
            },
        )

    context.route("**/bench/**", handle)


def markdown(result: dict) -> str:
    lines = [
        SECTION,
        "",
        f"`{result['command']}` — {result['date']}, {result['machine']}; load average {result['loadavg']}. "
        f"{result['rounds']} rounds, the graphs in turn (onnxruntime-web WASM, {result.get('threads', 2)} threads"
        f"{', spinning' if result.get('spin') else ''}, in Chromium); one click without and one with a fed-back "
        "mask per round; ms.",
        "",
        "| graph | no mask p50 | p95 | with mask p50 | p95 | p50 vs single |",
        "|---|---|---|---|---|---|",
    ]
    single = result["graphs"]["single"]
    for name, t in result["graphs"].items():
        ratio = (t["nomask"]["p50"] + t["mask"]["p50"]) / (single["nomask"]["p50"] + single["mask"]["p50"])
        lines.append(
            f"| {name} | {t['nomask']['p50']} | {t['nomask']['p95']} | {t['mask']['p50']} | {t['mask']['p95']} | "
            f"{ratio:.2f}× |"
        )
    native = result.get("native", {})
    if native:
        lines += [
            "",
            "The same graphs and feeds under native onnxruntime (Python, CPU provider, same run, after the browser), "
            "no mask / with mask p50 ms:",
            "",
            "| graph | " + " | ".join(f"{t} thread{'s' if t != '1' else ''}" for t in native) + " |",
            "|---|" + "---|" * len(native),
        ]
        for name in result["graphs"]:
            cells = [f"{v[name]['nomask']['p50']} / {v[name]['mask']['p50']}" for v in native.values()]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    prefix = ", ".join(f"{n} {ms:.0f} ms" for n, ms in result["prefix_ms"].items())
    lines += ["", f"The prefix graphs (once per opened image; a second run, warm): {prefix}.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime-web's WASM threads (the page: 2)")
    parser.add_argument("--spin", action="store_true", help="let the WASM threads spin between ops (the page: no)")
    parser.add_argument(
        "--extra", action="append", default=[], metavar="NAME=DIR", help="also time the prefix + prompt pair in DIR"
    )
    parser.add_argument("--json", type=Path, help="also write the results here (kept runs: bench/results/)")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--from-json", type=Path, help="only print (and write) the table of a saved --json")
    args = parser.parse_args()
    if args.from_json:
        result = json.loads(args.from_json.read_text())
    else:
        from playwright.sync_api import sync_playwright

        with tempfile.TemporaryDirectory(prefix="maskloop-graphs-") as tmp:
            extra = dict((n, Path(d)) for n, d in (e.split("=", 1) for e in args.extra))
            graphs = export_graphs(Path(tmp) / "graphs", extra)
            names = list(graphs)
            served = {f"{n}-{f.name}": f for n, pair in graphs.items() for f in pair if f is not None}
            data = copy_images(Path(tmp) / "data", {"chelsea.jpg": "chelsea.jpg"})
            server = LiveServer(data, Path(tmp) / "work", cache=Path(tempfile.gettempdir()) / "maskloop-bench-cache")
            try:
                with sync_playwright() as p:
                    browser = launch_chromium(p)
                    context = browser.new_context(viewport=VIEWPORT)
                    serve_bench(context, served)
                    page = context.new_page()
                    served_models = [f"{n}-{graphs[n][0].name}" for n in names]
                    models = ",".join(served_models)
                    prefixes = ",".join(f"{n}-{graphs[n][1].name}" if graphs[n][1] else "" for n in names)
                    page.goto(
                        f"{server.url}/bench/graphs.html?models={models}&prefixes={prefixes}&runs={args.rounds}"
                        f"&threads={args.threads}&spin={int(args.spin)}"
                    )
                    page.wait_for_function("() => window.ab && window.ab.done", timeout=1_800_000)
                    res = page.evaluate("window.ab")
                    browser.close()
            finally:
                server.stop()
            if "error" in res:
                sys.exit(res["error"])
            native = {t: native_times(graphs, args.rounds, t) for t in (1, 2)}

        result = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "command": " ".join(["python", "bench/bench_decoder_graphs.py", *sys.argv[1:]]),
            "rounds": args.rounds,
            "threads": args.threads,
            "spin": args.spin,
            "prefix_ms": {
                n: round(res["prefixMs"][m], 1) for n, m in zip(names, served_models) if m in res["prefixMs"]
            },
            "graphs": {name: _percentiles(t) for name, t in zip(names, res["times"], strict=True)},
            "native": {str(t): v for t, v in native.items()},
        }
    section = markdown(result)
    print(section)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.write_results:
        write_results(section, heading=SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
