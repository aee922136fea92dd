"""A new folder's first start (issue 27): ``maskloop serve`` on copies of ``sample_images/`` never
served before, timed from the process start to its first printed line, to its "ready at" line and
to the first HTTP 200 on ``/api/health``.

    .venv/bin/python bench/bench_first_start.py                  # 5 new folders
    .venv/bin/python bench/bench_first_start.py --folders 9 --write-results

Each run copies ``sample_images/`` to a new temp folder and starts ``maskloop serve --data DIR``
as a user would (the default caches: the decoder exported once per model by ``scripts/setup`` in
``~/.cache/maskloop/onnx``; precompute on), polls ``/api/health`` every 20 ms on a port chosen
beforehand, then asks for the first image's embedding (model load included) and stops the server. ``--cold`` adds one run with an empty ``ONNX_DIR`` (what a
model's very first start costs: the export). Not a test: numbers go into bench/RESULTS.md
(``--write-results`` replaces its "First start" section).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
HEADING = "## First start of a new folder (issue 27)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_once(
    data: Path, env: dict[str, str], embedding: bool = True, timeout: float = 300.0
) -> dict[str, float | str]:
    """One ``maskloop serve`` on ``data``: seconds to the first line, the ready line, HTTP 200 and
    (``embedding``) the first image's embedding as the page asks for it."""
    port = free_port()
    command = [sys.executable, "-m", "maskloop.cli", "serve", "--data", str(data), "--port", str(port)]
    marks: dict[str, float] = {}
    lines: list[str] = []
    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.monotonic() - start
            lines.append(f"{now:6.2f} {line.rstrip()}")
            marks.setdefault("first_line_s", now)
            if re.search(r"(ready|serving) at http", line):
                marks.setdefault("ready_line_s", now)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        while time.monotonic() - start < timeout and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    if r.status == 200:
                        marks["http_200_s"] = time.monotonic() - start
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.02)
        if "http_200_s" in marks and embedding:  # what a click needs: the first image's embedding
            base = f"http://127.0.0.1:{port}/api/images"
            with urllib.request.urlopen(base, timeout=60) as r:
                first = json.loads(r.read())[0]["id"]
            with urllib.request.urlopen(f"{base}/{first}/embedding", timeout=timeout) as r:
                r.read()
            marks["first_embedding_s"] = time.monotonic() - start
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
    if "http_200_s" not in marks:
        raise RuntimeError("no HTTP 200:\n" + "\n".join(lines[-20:]))
    return {**{k: round(v, 3) for k, v in marks.items()}, "log": "\n".join(lines)}


def stats(values: list[float]) -> dict[str, float]:
    a = np.array(values)
    return {
        "median": round(float(np.median(a)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "max": round(float(a.max()), 2),
    }


def machine() -> str:
    cpu = platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return f"{len(os.sched_getaffinity(0))} CPUs ({cpu}), {platform.system()} {platform.release()}"


def section(result: dict) -> str:
    rows = [
        f"| {name} | {s['median']} | {s['p95']} | {s['max']} |"
        for name, s in (
            ("first printed line", result["first_line_s"]),
            ("`ready at` line", result["ready_line_s"]),
            ("first HTTP 200 on /api/health", result["http_200_s"]),
            ("the first image's embedding (GET …/embedding)", result["first_embedding_s"]),
        )
    ]
    cold = result.get("cold")
    cold_text = (
        f"\n\nOne more start with an empty `ONNX_DIR` (a model's very first start: the decoder's export): first line "
        f"{cold['first_line_s']} s, HTTP 200 after {cold['http_200_s']} s."
        if cold
        else ""
    )
    return (
        f"{HEADING}\n\n"
        f"{result['date']} · {result['machine']} · load average before {result['loadavg']}\n\n"
        f"`{result['command']}`: `maskloop serve --data DIR` (precompute on, default caches: the decoder that "
        f"`scripts/setup` exported into `~/.cache/maskloop/onnx`) on {result['folders']} new copies of "
        f"`sample_images/`; seconds from the process start.\n\n"
        "| to | median | p95 | max |\n|---|---|---|---|\n" + "\n".join(rows) + f"\n\nTarget ≤ 5 s to the first HTTP "
        f"answer: **{'met' if result['http_200_s']['p95'] <= 5 else 'not met'}** (p95). Before (each folder exported the "
        f"decoder into its own `.maskloop/onnx`): 18–24 s on this machine (one start timed by hand, 23.7 s to "
        f"HTTP 200). After HTTP 200 the server opens its own decoder (for a cold page's first clicks), loads the "
        f"model and embeds the folder in the background; the last row is when the first image's embedding (what a "
        f"click needs) arrived, model load included.{cold_text}\n"
    )


def write_results(text: str, path: Path = REPO / "bench" / "RESULTS.md") -> None:
    """Replace (or append) this benchmark's section of bench/RESULTS.md."""
    body = path.read_text()
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(body):
        body = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", body, count=1).rstrip("\n") + "\n"
    else:
        body = body.rstrip("\n") + "\n\n" + text
    path.write_text(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", type=int, default=5, help="new folders, one start each (default 5)")
    parser.add_argument("--cold", action="store_true", help="one more start with an empty ONNX_DIR")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--verbose", action="store_true", help="print each server's output")
    args = parser.parse_args()
    from maskloop.paths import SAMPLE_IMAGES

    loadavg = " ".join(f"{v:.2f}" for v in os.getloadavg())
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    runs = []
    with tempfile.TemporaryDirectory(prefix="maskloop-first-start-") as tmp:
        for k in range(args.folders + (1 if args.cold else 0)):
            data = Path(tmp) / f"folder{k}"
            shutil.copytree(SAMPLE_IMAGES, data)
            run_env = dict(env, MASKLOOP_ONNX_DIR=str(Path(tmp) / "cold-onnx")) if k == args.folders else env
            run = start_once(data, run_env)
            if args.verbose:
                print(run["log"])
            print(
                f"{'cold ' if k == args.folders else ''}folder {k}: first line {run['first_line_s']} s, "
                f"ready line {run.get('ready_line_s')} s, HTTP 200 {run['http_200_s']} s, "
                f"first embedding {run.get('first_embedding_s')} s",
                flush=True,
            )
            runs.append(run)
    warm = runs[: args.folders]
    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "loadavg": loadavg,
        "command": "python " + " ".join(["bench/bench_first_start.py", *sys.argv[1:]]),
        "folders": args.folders,
        **{
            key: stats([float(r[key]) for r in warm])
            for key in ("first_line_s", "ready_line_s", "http_200_s", "first_embedding_s")
        },
        "runs": [{k: v for k, v in r.items() if k != "log"} for r in runs],
    }
    if args.cold:
        result["cold"] = result["runs"][-1]
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.write_results:
        write_results(section(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
