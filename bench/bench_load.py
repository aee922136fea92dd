"""Load benchmark: annotation writers while polygon exports run, on a store of ~10k annotations.

    .venv/bin/python bench/bench_load.py                         # 12 writers, 2 exporters, 60 s
    .venv/bin/python bench/bench_load.py --seconds 20 --annotations 2000   # a quick look

Runs a real ``maskloop serve`` (``--no-precompute``) on a synthetic folder (``--images`` JPEGs
of 640x480) whose store is seeded with ``--annotations`` accepted masks (random ellipses), then:

  1. quiet, single writer: one writer process POSTs masks for ``--quiet-seconds``;
  2. quiet, all writers: ``--writers`` writer processes POST for ``--quiet-seconds``, no export;
  3. loaded: while ``--exporters`` threads loop ``GET /api/export/coco?format=polygon`` (every
     write changes the store, so every export is computed anew) and a prober times
     ``GET /api/health`` every 0.25 s: one writer for ``--quiet-seconds``, then the same
     ``--writers`` writers for ``--seconds``.

Reported: POST p50/p95 of each phase and the loaded/quiet p95 ratios (``p95_ratio_1_writer_loaded_vs_quiet``:
one writer under the exports against one writer alone), exports finished / refused
(503) and their durations, health p95, 5xx count, acknowledged writes (201) found in the
database after the server stopped (must be all), and the peak RSS of the server and of its
export child (``VmHWM``). Not a timed test: results go into bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import percentiles, start_server  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 640, 480


def ellipse_masks(rng: np.random.Generator, n: int) -> list[dict]:
    """``n`` compressed RLEs of random filled ellipses (10..120 px radii) on a WIDTH x HEIGHT image."""
    import cv2

    from maskloop import masks

    out = []
    for _ in range(n):
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        centre = (int(rng.integers(60, WIDTH - 60)), int(rng.integers(60, HEIGHT - 60)))
        axes = (int(rng.integers(10, 120)), int(rng.integers(10, 120)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        out.append(masks.encode(mask))
    return out


def build_store(root: Path, images: int, annotations: int) -> tuple[Path, Path]:
    """A data folder of ``images`` JPEGs and a work folder whose store holds ``annotations`` masks."""
    from PIL import Image

    from maskloop.server.jobs.catalog import scan
    from maskloop.server.store.annotations import insert_annotation
    from maskloop.server.store.categories import ensure_category
    from maskloop.server.store.db import open_database, transaction

    rng = np.random.default_rng(0)
    data, work = root / "data", root / "work"
    data.mkdir(parents=True)
    for i in range(images):
        Image.fromarray(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(
            data / f"img{i:03d}.jpg", quality=80
        )
    conn = open_database(work / "maskloop.db")
    scan(conn, data, exclude=work)
    image_ids = [r[0] for r in conn.execute("SELECT id FROM image ORDER BY id")]
    shapes = ellipse_masks(rng, 200)
    with transaction(conn):
        category = ensure_category(conn, "object")
        for k in range(annotations):
            insert_annotation(
                conn, image_ids[k % len(image_ids)], category, shapes[k % len(shapes)], clicks=2, seconds=3.0
            )
    conn.close()
    return data, work


def writer(
    host: str,
    port: int,
    image_ids: list[int],
    category: int,
    bodies: list[bytes],
    seconds: float,
    seed: int,
    out: multiprocessing.Queue,
) -> None:
    """One writer process: POST masks back to back for ``seconds``; report latencies, ids, statuses."""
    rng = np.random.default_rng(seed)
    conn = http.client.HTTPConnection(host, port, timeout=120)
    latencies, acknowledged, statuses = [], [], {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        image = image_ids[int(rng.integers(len(image_ids)))]
        body = bodies[int(rng.integers(len(bodies)))]
        t0 = time.perf_counter()
        try:
            conn.request(
                "POST", f"/api/images/{image}/annotations", body=body, headers={"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=120)
            continue
        latencies.append(time.perf_counter() - t0)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status == 201:
            acknowledged.append(json.loads(payload)["id"])
    conn.close()
    out.put({"latencies": latencies, "acknowledged": acknowledged, "statuses": statuses})


def run_writers(
    n: int, host: str, port: int, image_ids: list[int], category: int, bodies: list[bytes], seconds: float
) -> dict:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=writer, args=(host, port, image_ids, category, bodies, seconds, i, queue))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    statuses: dict = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[str(k)] = statuses.get(str(k), 0) + v
    latencies = [x for r in results for x in r["latencies"]]
    return {
        "posts": percentiles(latencies),
        "statuses": statuses,
        "acknowledged": [i for r in results for i in r["acknowledged"]],
    }


class Exporters:
    """Threads looping the polygon export, plus a prober timing ``GET /api/health``."""

    def __init__(self, host: str, port: int, n: int) -> None:
        self.host, self.port, self.n = host, port, n
        self.stop = threading.Event()
        self.durations: list[float] = []
        self.statuses: dict[str, int] = {}
        self.health: list[float] = []
        self.sizes: list[int] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._export, daemon=True) for _ in range(n)]
        self.threads.append(threading.Thread(target=self._probe, daemon=True))

    def _export(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        while not self.stop.is_set():
            t0 = time.perf_counter()
            conn.request("GET", "/api/export/coco?format=polygon")
            response = conn.getresponse()
            body = response.read()
            with self._lock:
                self.statuses[str(response.status)] = self.statuses.get(str(response.status), 0) + 1
                if response.status == 200:
                    self.durations.append(time.perf_counter() - t0)
                    self.sizes.append(len(body))
            if response.status == 503:
                self.stop.wait(float(response.getheader("Retry-After") or 1))
        conn.close()

    def _probe(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
        while not self.stop.is_set():
            t0 = time.perf_counter()
            conn.request("GET", "/api/health")
            conn.getresponse().read()
            self.health.append(time.perf_counter() - t0)
            self.stop.wait(0.25)
        conn.close()

    def __enter__(self) -> Exporters:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(600)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_writers(pid: int, *args) -> dict:
    """``run_writers(*args)`` plus the server's CPU time per POST (``server_cpu_ms_per_post``)."""
    before = cpu_seconds(pid)
    result = run_writers(*args)
    posts = max(1, result["posts"]["n"])
    result["posts"]["server_cpu_ms_per_post"] = round((cpu_seconds(pid) - before) * 1000 / posts, 2)
    return result


def peak_rss_mib(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set) of ``pid`` and of each of its children, in MiB."""

    def hwm(p: int) -> float | None:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    out = {"server": hwm(pid)}
    children = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    for child in sorted(children):
        out[f"child {child}"] = hwm(child)
    return {k: round(v, 1) for k, v in out.items() if v is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=12)
    parser.add_argument("--exporters", type=int, default=2, help="threads looping the polygon export")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the loaded phase")
    parser.add_argument("--quiet-seconds", type=float, default=20.0, help="length of each quiet phase")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--annotations", type=int, default=10_000, help="masks in the store before the run")
    parser.add_argument(
        "--onnx-dir",
        type=Path,
        default=REPO / ".work" / "bench-onnx",
        help="decoder export reused between runs (made at the first server start)",
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON here (kept runs: bench/results/)")
    args = parser.parse_args()
    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "command": " ".join(["python"] + sys.argv),
        "load_before": os.getloadavg(),
    }
    args.onnx_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="maskloop-load-") as tmp:
        t0 = time.perf_counter()
        data, work = build_store(Path(tmp), args.images, args.annotations)
        print(
            f"store: {args.annotations} annotations on {args.images} images in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        server = start_server(data, work, args.onnx_dir)
        host, port = server.host, server.port
        try:
            conn = http.client.HTTPConnection(host, port, timeout=60)
            conn.request("GET", "/api/images")
            image_ids = [im["id"] for im in json.loads(conn.getresponse().read())]
            conn.close()
            bodies = [
                json.dumps(
                    {
                        "category_id": 1,
                        "segmentation": rle,
                        "clicks": 2,
                        "seconds": 3.0,
                        "stage": "manual",
                        "prompts": {"points": [[100, 100, 1]]},
                    }
                ).encode()
                for rle in ellipse_masks(np.random.default_rng(1), 20)
            ]
            single = timed_writers(server.proc.pid, 1, host, port, image_ids, 1, bodies, args.quiet_seconds)
            print("quiet, 1 writer:", single["posts"], flush=True)
            quiet = timed_writers(server.proc.pid, args.writers, host, port, image_ids, 1, bodies, args.quiet_seconds)
            print(f"quiet, {args.writers} writers:", quiet["posts"], flush=True)
            with Exporters(host, port, args.exporters) as exporters:
                time.sleep(0.5)  # the first export is asked for and computing
                single_loaded = timed_writers(server.proc.pid, 1, host, port, image_ids, 1, bodies, args.quiet_seconds)
                print(f"1 writer + {args.exporters} exporters:", single_loaded["posts"], flush=True)
                loaded = timed_writers(server.proc.pid, args.writers, host, port, image_ids, 1, bodies, args.seconds)
            print(f"loaded, {args.writers} writers + {args.exporters} exporters:", loaded["posts"], flush=True)
            rss = peak_rss_mib(server.proc.pid)
        finally:
            server.stop()
        acknowledged = (
            single["acknowledged"] + quiet["acknowledged"] + single_loaded["acknowledged"] + loaded["acknowledged"]
        )
        db = sqlite3.connect(work / "maskloop.db")
        found = {r[0] for r in db.execute("SELECT id FROM annotation")}
        total = db.execute("SELECT count(*) FROM annotation").fetchone()[0]
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.close()
    statuses = [
        single["statuses"],
        quiet["statuses"],
        single_loaded["statuses"],
        loaded["statuses"],
        exporters.statuses,
    ]
    result.update(
        {
            "store_annotations_before": args.annotations,
            "post_quiet_1_writer": single["posts"],
            f"post_quiet_{args.writers}_writers": quiet["posts"],
            f"post_loaded_1_writer_{args.exporters}_exporters": single_loaded["posts"],
            f"post_loaded_{args.writers}_writers_{args.exporters}_exporters": loaded["posts"],
            "p95_ratio_1_writer_loaded_vs_quiet": round(
                single_loaded["posts"]["p95_ms"] / single["posts"]["p95_ms"], 2
            ),
            "p95_ratio_loaded_vs_quiet_same_writers": round(loaded["posts"]["p95_ms"] / quiet["posts"]["p95_ms"], 2),
            "p95_ratio_loaded_vs_quiet_1_writer": round(loaded["posts"]["p95_ms"] / single["posts"]["p95_ms"], 2),
            "post_statuses": {
                "quiet_1": single["statuses"],
                "quiet": quiet["statuses"],
                "loaded_1": single_loaded["statuses"],
                "loaded": loaded["statuses"],
            },
            "exports": {
                "statuses": exporters.statuses,
                "finished": len(exporters.durations),
                "seconds": percentiles(exporters.durations) if exporters.durations else None,
                "bytes_last": exporters.sizes[-1] if exporters.sizes else None,
            },
            "health_during_load": percentiles(exporters.health) if exporters.health else None,
            "responses_5xx": sum(v for s in statuses[:3] for k, v in s.items() if k.isdigit() and int(k) >= 500)
            + sum(v for k, v in single_loaded["statuses"].items() if k.isdigit() and int(k) >= 500)
            + sum(
                v for k, v in exporters.statuses.items() if int(k) >= 500 and k != "503"
            ),  # 503 = export busy, by design
            "export_503": exporters.statuses.get("503", 0),
            "acknowledged_writes": len(acknowledged),
            "acknowledged_lost": len(set(acknowledged) - found),
            "annotations_after": total,
            "integrity_check": integrity,
            "peak_rss_mib": rss,
            "load_after": os.getloadavg(),
        }
    )
    print(json.dumps(result, indent=2), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
