"""Team benchmark: 2 server processes on one store, simulated annotators, a SIGKILL under load.

    .venv/bin/python bench/bench_teams.py                         # both backends, 20 annotators, 60 s
    .venv/bin/python bench/bench_teams.py --backend postgresql --seconds 20 --annotators 8   # a quick look

For each backend (SQLite file; a real PostgreSQL started in a temporary folder, see
tests/support/pg_cluster.py) it makes a folder of ``--images`` small JPEGs, one admin and
``--annotators`` annotator accounts, and starts two ``maskloop serve --db URL`` processes
(waitress, ``--no-precompute``) on the same store. Each simulated annotator (its own process)
loops until the time is up: ``POST /api/work/next`` -> ``--masks`` x ``POST .../annotations`` ->
``POST /api/work/<id>/renew`` -> ``PATCH /api/images/<id> {"status": "done"}``, each request to
a random one of the two servers (the other one when a server does not answer). At
``--kill-at`` of the run the second server gets SIGKILL; the annotators carry on with the first.

Checked after both servers stopped, in the store itself: every acknowledged (201) annotation is
there with its image and author (0 lost), no image was handed to two annotators (from the
``next`` answers, and every image's masks have one author), annotation ids are unique.
Reported: POST (annotation) p50/p95, all requests/s, next-image p50/p95, failed requests (the
kill's). Not a timed test: results go into bench/RESULTS.md (``--write-results``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import LiveServer, percentiles  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 64, 48


def make_images(folder: Path, n: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(folder / f"img{i:05d}.jpg")


def start_server(data: Path, work: Path, db: str, onnx_dir: Path, k: int) -> LiveServer:
    """Server ``k`` of the team's, on the shared store ``db`` (one torch thread; log ``serve-K.log``)."""
    env = {"MASKLOOP_ONNX_DIR": str(onnx_dir), "MASKLOOP_TORCH_THREADS": "1"}
    args = ["--db", db, "--device", "cpu", "--no-precompute"]
    return LiveServer(data, work, args=args, env=env, log_path=work / f"serve-{k}.log")


def request(conns: dict, ports: list[int], method: str, path: str, token: str, body=None) -> tuple[int, dict, float]:
    """One request to a random live server (the other on a connection error): (status, JSON, seconds)."""
    order = random.sample(ports, len(ports))
    for port in order:
        try:
            conn = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conns[port] = conn
            started = time.perf_counter()
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Authorization": f"Bearer {token}"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw else {}), time.perf_counter() - started
        except (OSError, http.client.HTTPException):
            conns.pop(port, None)
    return 0, {}, 0.0


def annotator(token: str, account_id: int, ports: list[int], deadline: float, masks_per_image: int, category: int, out):
    from maskloop import masks

    rng = np.random.default_rng(account_id)
    conns: dict = {}
    log = {
        "account": account_id,
        "post": [],
        "next": [],
        "other": [],
        "acked": [],
        "taken": [],
        "failed": 0,
        "codes": {},
        "errors": [],  # (time, status) of every answer that was not a success (0: no server answered)
        "ok_posts": [],  # times of acknowledged mask POSTs
    }

    def failed(status: int) -> None:
        log["failed"] += 1
        log["codes"][str(status)] = log["codes"].get(str(status), 0) + 1
        log["errors"].append((time.time(), status))

    while time.time() < deadline:
        status, body, dt = request(conns, ports, "POST", "/api/work/next", token)
        log["next"].append(dt)
        if status != 200:
            failed(status)
            time.sleep(0.1)
            continue
        image = body["image"]
        if image is None:
            time.sleep(0.2)
            continue
        log["taken"].append(image["id"])
        for _ in range(masks_per_image):
            mask = np.zeros((HEIGHT, WIDTH), np.uint8)
            x, y = int(rng.integers(0, WIDTH - 10)), int(rng.integers(0, HEIGHT - 10))
            mask[y : y + 10, x : x + 10] = 1
            payload = {"category_id": category, "segmentation": masks.encode(mask), "clicks": 2, "seconds": 3.0}
            status, created, dt = request(
                conns, ports, "POST", f"/api/images/{image['id']}/annotations", token, payload
            )
            if status == 201:
                log["post"].append(dt)
                log["acked"].append((created["id"], image["id"]))
                log["ok_posts"].append(time.time())
            else:
                failed(status)
        for method, path, payload in (
            ("POST", f"/api/work/{image['id']}/renew", None),
            ("PATCH", f"/api/images/{image['id']}", {"status": "done"}),
        ):
            status, _, dt = request(conns, ports, method, path, token, payload)
            log["other"].append(dt)
            if status != 200:
                failed(status)
    out.put(log)


def run(backend: str, args: argparse.Namespace) -> dict:
    from support.pg_cluster import TempCluster  # tests/support, on sys.path through bench_server

    from maskloop.server.store import accounts
    from maskloop.server.store.categories import ensure_category
    from maskloop.server.store.db import connect, open_database, transaction

    root = Path(tempfile.mkdtemp(prefix=f"maskloop-teams-{backend}-"))
    data, work = root / "data", root / "work"
    make_images(data, args.images)
    cluster = TempCluster().start() if backend == "postgresql" else None
    db = cluster.create_database("teams") if cluster else f"sqlite:///{work / 'maskloop.db'}"
    servers: list[LiveServer] = []
    try:
        conn = open_database(db)
        people = [accounts.add_account(conn, f"annotator{i:02d}", "annotator") for i in range(args.annotators)]
        with transaction(conn):
            category = ensure_category(conn, "thing")
        conn.close()
        ports = []
        for k in range(2):  # one after the other: both scan the folder at start
            servers.append(start_server(data, work, db, args.onnx_dir, k))
            ports.append(servers[-1].port)
        out: multiprocessing.Queue = multiprocessing.Queue()
        started = time.time()
        deadline = started + args.seconds
        workers = [
            multiprocessing.Process(
                target=annotator,
                args=(p.token, p.account.id, ports, deadline, args.masks, category, out),
            )
            for p in people
        ]
        for w in workers:
            w.start()
        time.sleep(args.seconds * args.kill_at)
        servers[1].kill()  # under load: requests in flight on it are lost, unacknowledged
        killed_at = time.time() - started
        logs = [out.get() for _ in workers]
        for w in workers:
            w.join()
        elapsed = time.time() - started
    finally:
        for server in servers:
            server.stop()
    conn = connect(db)
    stored = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, image_id, author_id FROM annotation").fetchall()}
    authors_per_image = conn.execute(
        "SELECT image_id, count(DISTINCT author_id) FROM annotation GROUP BY image_id HAVING count(DISTINCT author_id) > 1"
    ).fetchall()
    conn.close()
    if cluster:
        cluster.stop()
    acked = [(ann_id, image_id, log["account"]) for log in logs for ann_id, image_id in log["acked"]]
    lost = [a for a in acked if stored.get(a[0]) != (a[1], a[2])]
    taken_by: dict[int, set[int]] = {}
    for log in logs:
        for image_id in log["taken"]:
            taken_by.setdefault(image_id, set()).add(log["account"])
    posts = [dt for log in logs for dt in log["post"]]
    requests_done = sum(len(log["post"]) + len(log["next"]) + len(log["other"]) for log in logs)
    codes: dict[str, int] = {}
    for log in logs:
        for code, n in log["codes"].items():
            codes[code] = codes.get(code, 0) + n
    return {
        "backend": backend,
        "annotators": args.annotators,
        "seconds": round(elapsed, 1),
        "killed_second_server_at_s": round(killed_at, 1),
        "acknowledged_writes": len(acked),
        "acknowledged_writes_lost": len(lost),
        "images_finished_or_taken": len(taken_by),
        "images_held_by_two": sum(len(a) > 1 for a in taken_by.values()) + len(authors_per_image),
        "annotation_ids_unique": len({a[0] for a in acked}) == len(acked),
        "post": percentiles(posts) if posts else None,
        "next": percentiles([dt for log in logs for dt in log["next"]]),
        "requests_per_s": round(requests_done / elapsed, 1),
        "failed_requests": sum(log["failed"] for log in logs),
        "failed_by_status": codes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--images", type=int, default=3000, help="more than the annotators can finish")
    parser.add_argument("--masks", type=int, default=3, help="masks posted per image")
    parser.add_argument("--kill-at", type=float, default=0.75, help="SIGKILL the second server at this fraction")
    parser.add_argument("--onnx-dir", type=Path, default=REPO / ".work" / "bench-onnx")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here (kept runs: bench/results/)")
    parser.add_argument("--write-results", action="store_true", help="append a section to bench/RESULTS.md")
    args = parser.parse_args()
    args.onnx_dir.mkdir(parents=True, exist_ok=True)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": "python " + " ".join(["bench/bench_teams.py", *sys.argv[1:]]),
        "runs": [run(b, args) for b in backends],
        "load_average_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.write_results:
        rows = "".join(
            f"| {r['backend']} | {r['post']['p50_ms']} | {r['post']['p95_ms']} | {r['next']['p50_ms']} | "
            f"{r['next']['p95_ms']} | {r['requests_per_s']} | {r['acknowledged_writes']} | "
            f"{r['acknowledged_writes_lost']} | {r['images_held_by_two']} | {r['annotation_ids_unique']} | "
            f"{r['failed_requests']} |\n"
            for r in results["runs"]
        )
        section = f"""
## Teams: 2 server processes, {args.annotators} annotators, SIGKILL under load (issue 13) — {results["date"]}

Machine: {results["machine"]}, load average {results["load_average_end"]} at the end. Command: `{results["command"]}`.
Two `maskloop serve --db` processes (waitress) on one store; each annotator: next image -> {args.masks} mask
POSTs -> renew -> done, requests spread over both servers; the second server SIGKILLed at
{args.kill_at:.0%} of the run (failed requests are the ones in flight on it, never acknowledged).

| backend | POST p50 ms | POST p95 ms | next p50 ms | next p95 ms | requests/s | acknowledged writes | lost | images held twice | ids unique | failed requests |
|---|---|---|---|---|---|---|---|---|---|---|
{rows}"""
        with open(REPO / "bench" / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(section)


if __name__ == "__main__":
    main()
