"""The server's decode endpoint under several cold pages at once: ``POST /api/images/<id>/decode``.

A cold page's first clicks are decoded by the server (the fp32 split pair on
native onnxruntime, one thread per request, the prefix kept for the last few images) while the
page's own decoder loads. This runs a real ``maskloop serve`` on the sample photos (embeddings
precomputed first), then ``--clients`` threads at once, each with its own keep-alive connection,
each making ``--requests`` single clicks at random points of random images (the first on an
image runs its prefix), and reports the latency per request (sent -> answer read), the
requests per second and the decoder's own time (the answer's ``ms``), for each number of clients
in turn.

    .venv/bin/python bench/bench_server_decode.py [--clients 1 4 8] [--requests 30] [--json FILE]

Not a timed test: numbers go into bench/RESULTS.md by hand.
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
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
from bench_server import percentiles, sample_copy  # noqa: E402
from live_server import LiveServer  # noqa: E402


def client_run(
    server: LiveServer, images: list[dict], requests: int, seed: int, out: list[float], model: list[float]
) -> None:
    """``requests`` single-click decodes over one connection; appends each one's seconds to ``out``
    and the decoder's own seconds (the answer's ``ms``) to ``model``."""
    rng = np.random.default_rng(seed)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=600)
    for _ in range(requests):
        image = images[int(rng.integers(len(images)))]
        x, y = rng.uniform(0.1, 0.9) * image["width"], rng.uniform(0.1, 0.9) * image["height"]
        body = json.dumps({"points": [[x, y, 1]], "box": None}).encode()
        t0 = time.perf_counter()
        conn.request("POST", f"/api/images/{image['id']}/decode", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        out.append(time.perf_counter() - t0)
        assert response.status == 200, answer[:200]
        model.append(json.loads(answer)["ms"] / 1000)
    conn.close()


def bench(clients: list[int], requests: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="maskloop-bench-") as tmp:
        data = sample_copy(Path(tmp) / "data", 1)
        server = LiveServer(data, Path(tmp) / "work", args=["--device", "cpu"])
        try:
            server.wait_for_embeddings()
            images = [im for im in server.get_json("/api/images") if not im.get("error")]
            warm: list[float] = []
            client_run(server, images, 4, 0, warm, [])  # the first decode of the process opens nothing more
            rows = {}
            for n in clients:
                times: list[list[float]] = [[] for _ in range(n)]
                model: list[list[float]] = [[] for _ in range(n)]
                threads = [
                    threading.Thread(
                        target=client_run, args=(server, images, requests, 100 * n + k, times[k], model[k])
                    )
                    for k in range(n)
                ]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.perf_counter() - t0
                flat = [s for ts in times for s in ts]
                assert len(flat) == n * requests, f"{len(flat)} of {n * requests} requests answered"
                rows[str(n)] = {
                    **percentiles(flat),
                    "requests_per_s": round(len(flat) / wall, 1),
                    "decoder_run": percentiles([s for ms in model for s in ms]),
                }
                print(f"{n} clients: {rows[str(n)]}", flush=True)
        finally:
            server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=30, help="decodes per client (default 30)")
    parser.add_argument("--json", type=Path, help="also write the results here (kept runs: bench/results/)")
    args = parser.parse_args()
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "command": " ".join(["python", "bench/bench_server_decode.py", *sys.argv[1:]]),
        "loadavg_before": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "clients": bench(args.clients, args.requests),
    }
    result["loadavg_after"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
