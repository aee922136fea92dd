"""Decoder graph variants timed in turn in headless Chromium's onnxruntime-web (WASM, 2 threads).

Issue 12 asked to keep the graph changes that measure faster in WASM and drop the others. Graphs
(each with the float16 embedding input and 256x256 outputs the page uses):

* ``single``: ``decoder.onnx`` as exported before issue 12 (one graph per prompt);
* ``prompt``: the per-prompt half of the split decoder (exporter/decoder_prefix.py), fed the
  prefix's outputs (the prefix runs once, its time reported apart);
* ``convtranspose``: the single graph with SAM's two 2x2/stride-2 ConvTranspose layers written as
  a 1x1 conv to 4x the channels + depth-to-space (the same maths).

Runs alternate between the graphs (one prompt without and one with a fed-back mask each round),
so a busy machine slows them alike; p50/p95 in ms.

Usage: .venv/bin/python bench/bench_decoder_graphs.py [--rounds 30] [--json FILE] [--write-results]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "web"))
from bench_web import machine, write_results  # noqa: E402
from web_harness import VIEWPORT, LiveServer, copy_images, launch_chromium  # noqa: E402

BENCH = Path(__file__).resolve().parent
SECTION = "## Decoder graphs in WASM (issue 12)"


class ConvTransposeAsConv(torch.nn.Module):
    """ConvTranspose2d(k=2, s=2) as a 1x1 conv to 4x the channels + pixel shuffle (DepthToSpace)."""

    def __init__(self, ct: torch.nn.ConvTranspose2d) -> None:
        super().__init__()
        cin, cout = ct.weight.shape[:2]
        self.conv = torch.nn.Conv2d(cin, cout * 4, 1)
        self.conv.weight.data.copy_(ct.weight.detach().permute(1, 2, 3, 0).reshape(cout * 4, cin, 1, 1))
        self.conv.bias.data.copy_(ct.bias.detach().repeat_interleave(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pixel_shuffle(self.conv(x), 2)


def export_graphs(out: Path) -> dict[str, Path]:
    from maskloop.exporter.decoder_prefix import export_prefix_pair
    from maskloop.exporter.onnx_export import export_onnx_file
    from maskloop.exporter.registry import load_sam

    model = load_sam("vit_t")
    out.mkdir(parents=True, exist_ok=True)
    export_onnx_file(model, out / "single.onnx", variant="lowres", embedding_dtype="float16")
    prefix, prompt = export_prefix_pair(model, out)
    rewritten = copy.deepcopy(model)
    up = rewritten.mask_decoder.output_upscaling
    for i, layer in enumerate(up):
        if isinstance(layer, torch.nn.ConvTranspose2d):
            up[i] = ConvTransposeAsConv(layer)
    x = torch.randn(1, 256, 64, 64)
    with torch.no_grad():
        assert (model.mask_decoder.output_upscaling(x) - up(x)).abs().max() < 1e-4, "the rewrite changed the maths"
    export_onnx_file(rewritten, out / "convtranspose.onnx", variant="lowres", embedding_dtype="float16")
    return {
        "single": out / "single.onnx",
        "prompt": prompt,
        "convtranspose": out / "convtranspose.onnx",
        "prefix": prefix,
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
            body, mime = (BENCH / name).read_bytes(), "text/javascript"
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
        f"{result['rounds']} rounds, the graphs in turn (onnxruntime-web WASM, 2 threads, in Chromium); "
        "one click without and one with a fed-back mask per round; ms.",
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
    lines += [
        "",
        f"The prefix (once per opened image): {result['prefix_ms']:.0f} ms. Kept: the split decoder "
        "(the page runs it); dropped: the ConvTranspose rewrite (not faster).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--from-json", type=Path, help="only print (and write) the table of a saved --json")
    args = parser.parse_args()
    if args.from_json:
        result = json.loads(args.from_json.read_text())
    else:
        from playwright.sync_api import sync_playwright

        with tempfile.TemporaryDirectory(prefix="maskloop-graphs-") as tmp:
            files = export_graphs(Path(tmp) / "graphs")
            names = [n for n in files if n != "prefix"]
            data = copy_images(Path(tmp) / "data", {"chelsea.jpg": "chelsea.jpg"})
            server = LiveServer(data, Path(tmp) / "work", cache=Path(tempfile.gettempdir()) / "maskloop-bench-cache")
            try:
                with sync_playwright() as p:
                    browser = launch_chromium(p)
                    context = browser.new_context(viewport=VIEWPORT)
                    serve_bench(context, {f.name: f for f in files.values()})
                    page = context.new_page()
                    models = ",".join(files[n].name for n in names)
                    page.goto(
                        f"{server.url}/bench/graphs.html?models={models}&prefix={files['prefix'].name}&runs={args.rounds}"
                    )
                    page.wait_for_function("window.ab && window.ab.done", timeout=1_800_000)
                    res = page.evaluate("window.ab")
                    browser.close()
            finally:
                server.stop()
        if "error" in res:
            sys.exit(res["error"])

        def pct(v, q):
            return round(float(np.percentile(v, q)), 1)

        result = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "loadavg": " ".join(f"{v:.2f}" for v in os.getloadavg()),
            "command": " ".join(["python", "bench/bench_decoder_graphs.py", *sys.argv[1:]]),
            "rounds": args.rounds,
            "prefix_ms": res["prefixMs"],
            "graphs": {
                name: {k: {"p50": pct(v, 50), "p95": pct(v, 95)} for k, v in t.items()}
                for name, t in zip(names, res["times"], strict=True)
            },
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
