"""Memory benchmark: concurrent cold embeddings of very large images.

    .venv/bin/python bench/bench_decode_memory.py            # 6 requests, 9000x9000 PNGs

Writes ``--images`` PNGs of ``--side`` x ``--side`` pixels (a smooth gradient: a few hundred
KB on disk, ~240 MB decoded as RGB), starts ``maskloop serve --no-precompute --device cpu``,
sends one ``GET /api/images/<id>/embedding`` per image all at once, and samples the server's
resident memory (``VmRSS``) every 0.1 s. Reported: the peak (``VmHWM``), the RSS once every
answer is in and 5 s later, the answers' statuses and the wall time. Not a timed test: results
go into bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import start_server  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def proc_status(pid: int, key: str) -> float:
    """``VmRSS`` / ``VmHWM`` of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--side", type=int, default=9000)
    parser.add_argument("--onnx-dir", type=Path, default=REPO / ".work" / "bench-onnx")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here (kept runs: bench/results/)")
    args = parser.parse_args()
    from PIL import Image

    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs",
        "command": " ".join(["python"] + sys.argv),
        "load_before": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="maskloop-mem-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        ramp = np.linspace(0, 255, args.side, dtype=np.float32)
        for i in range(args.images):
            grey = ((ramp[None, :] + ramp[:, None] * (i + 1)) % 256).astype(np.uint8)
            Image.fromarray(np.stack([grey, grey[::-1], grey[:, ::-1]], axis=2)).save(
                data / f"big{i}.png", compress_level=6
            )
        result["png_bytes"] = sorted(p.stat().st_size for p in data.glob("*.png"))
        proc, host, port = start_server(data, Path(tmp) / "work", args.onnx_dir)
        try:
            conn = http.client.HTTPConnection(host, port, timeout=60)
            conn.request("GET", "/api/images")
            images = json.loads(conn.getresponse().read())
            conn.close()
            result["listing_errors"] = [im.get("error") for im in images if im.get("error")]
            rss_idle = proc_status(proc.pid, "VmRSS")
            statuses: list[int] = []

            def fetch(image_id: int) -> None:
                c = http.client.HTTPConnection(host, port, timeout=1200)
                c.request("GET", f"/api/images/{image_id}/embedding")
                response = c.getresponse()
                response.read()
                statuses.append(response.status)
                c.close()

            samples: list[float] = []
            threads = [threading.Thread(target=fetch, args=(im["id"],)) for im in images if not im.get("error")]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                samples.append(proc_status(proc.pid, "VmRSS"))
                time.sleep(0.1)
            wall = time.perf_counter() - t0
            rss_done = proc_status(proc.pid, "VmRSS")
            time.sleep(5)
            result.update(
                {
                    "requests": len(threads),
                    "statuses": sorted(statuses),
                    "wall_s": round(wall, 1),
                    "rss_idle_mib": round(rss_idle, 1),
                    "rss_peak_sampled_mib": round(max(samples), 1),
                    "vm_hwm_mib": round(proc_status(proc.pid, "VmHWM"), 1),
                    "rss_after_mib": round(rss_done, 1),
                    "rss_after_5s_mib": round(proc_status(proc.pid, "VmRSS"), 1),
                }
            )
        finally:
            proc.terminate()
            proc.wait(60)
    result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=2), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
