"""Chaos run: simulated annotators on PostgreSQL while the harness breaks things, and nothing is lost.

    .venv/bin/python bench/bench_chaos.py                                  # 20 annotators, 5 minutes
    .venv/bin/python bench/bench_chaos.py --seconds 60 --annotators 8      # a quick look

Two ``maskloop serve --db postgresql://...`` processes on one store, the annotators of
``bench_teams.py`` (next image -> masks -> renew -> done, each request to a random live server).
The PostgreSQL cluster lives on a small tmpfs the harness mounts (root only). During the run:

1. at ``--restart-at`` of the run PostgreSQL is stopped as a crash would (``pg_ctl -m immediate``)
   and started again ``--outage`` seconds later;
2. at ``--kill-at`` the second server gets SIGKILL (the annotators carry on with the first);
3. at ``--fill-at`` the disk holding PostgreSQL is filled for ``--fill-seconds`` (a file takes
   all but a few kB of the tmpfs, then is deleted).

Checked afterwards, in the store: every acknowledged (201) annotation is there with its image
and author (lost: must be 0), no image was handed to two annotators (0), 5xx answers outside the
outage windows (a fault's start to ``--grace`` seconds after its end; must be 0), and per fault
the time from its end to the next acknowledged write (recovery). Not a timed test: results go
into bench/RESULTS.md (``--write-results``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_teams import REPO, LiveServer, annotator, make_images, percentiles, start_server  # noqa: E402

HEADING = "## Chaos: PostgreSQL restart, a server SIGKILLed, a full disk, under 20 annotators (issue 25)"


def mount_tmpfs(size_mb: int) -> Path:
    point = Path(tempfile.mkdtemp(prefix="maskloop-chaos-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=1777", "tmpfs", str(point)], check=True)
    return point


def fill(disk: Path, leave: int = 8192) -> Path:
    filler = disk / "filler"
    st = os.statvfs(disk)
    with filler.open("wb") as f:
        remaining = st.f_bavail * st.f_frsize - leave
        chunk = b"\0" * (1 << 20)
        while remaining > 0:
            try:
                f.write(chunk[: min(len(chunk), remaining)])
            except OSError:
                break
            remaining -= len(chunk)
    return filler


def run(args: argparse.Namespace) -> dict:
    from support.pg_cluster import TempCluster

    from maskloop.server.store import accounts
    from maskloop.server.store.categories import ensure_category
    from maskloop.server.store.db import connect, open_database, transaction

    root = Path(tempfile.mkdtemp(prefix="maskloop-chaos-"))
    data, work = root / "data", root / "work"
    make_images(data, args.images)
    disk = mount_tmpfs(args.disk_mb)
    cluster = TempCluster(parent=disk).start()
    db = cluster.create_database("chaos")
    servers: list[LiveServer] = []
    windows: dict[str, list[float]] = {}
    try:
        conn = open_database(db)
        people = [accounts.add_account(conn, f"annotator{i:02d}", "annotator") for i in range(args.annotators)]
        with transaction(conn):
            category = ensure_category(conn, "thing")
        conn.close()
        for k in range(2):
            servers.append(start_server(data, work, db, args.onnx_dir, k))
        ports = [s.port for s in servers]
        out: multiprocessing.Queue = multiprocessing.Queue()
        started = time.time()
        deadline = started + args.seconds
        workers = [
            multiprocessing.Process(
                target=annotator, args=(p.token, p.account.id, ports, deadline, args.masks, category, out)
            )
            for p in people
        ]
        for w in workers:
            w.start()

        def at(fraction: float) -> None:
            time.sleep(max(0.0, started + args.seconds * fraction - time.time()))

        at(args.restart_at)
        t0 = time.time()
        cluster.halt()
        time.sleep(args.outage)
        cluster.resume()
        windows["PostgreSQL restart"] = [t0, time.time()]
        at(args.kill_at)
        t0 = time.time()
        servers[1].kill()
        windows["server SIGKILL"] = [t0, t0]
        at(args.fill_at)
        t0 = time.time()
        filler = fill(disk)
        time.sleep(args.fill_seconds)
        filler.unlink()
        windows["disk full"] = [t0, time.time()]
        logs = [out.get() for _ in workers]
        for w in workers:
            w.join()
        elapsed = time.time() - started
    finally:
        for server in servers:
            server.stop()
    conn = connect(db)
    stored = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, image_id, author_id FROM annotation").fetchall()}
    two_authors = conn.execute(
        "SELECT image_id FROM annotation GROUP BY image_id HAVING count(DISTINCT author_id) > 1"
    ).fetchall()
    conn.close()
    cluster.stop()
    subprocess.run(["umount", "-l", str(disk)], check=False)

    acked = [(a, image, log["account"]) for log in logs for a, image in log["acked"]]
    lost = [a for a in acked if stored.get(a[0]) != (a[1], a[2])]
    taken_by: dict[int, set[int]] = {}
    for log in logs:
        for image_id in log["taken"]:
            taken_by.setdefault(image_id, set()).add(log["account"])
    errors = sorted((t, status) for log in logs for t, status in log["errors"])
    ok_posts = sorted(t for log in logs for t in log["ok_posts"])

    def in_window(t: float) -> bool:
        return any(a <= t <= b + args.grace for a, b in windows.values())

    faults = {}
    for name, (a, b) in windows.items():
        after = next((t for t in ok_posts if t >= b), None)
        inside = [s for t, s in errors if a <= t <= b + args.grace]
        faults[name] = {
            "start_s": round(a - started, 1),
            "length_s": round(b - a, 1),
            "recovered_after_s": None if after is None else round(after - b, 2),
            "answers_in_window": {str(s): inside.count(s) for s in sorted(set(inside))},
        }
    return {
        "annotators": args.annotators,
        "seconds": round(elapsed, 1),
        "acknowledged_writes": len(acked),
        "acknowledged_writes_lost": len(lost),
        "images_held_by_two": sum(len(v) > 1 for v in taken_by.values()) + len(two_authors),
        "5xx_outside_outages": sum(1 for t, s in errors if s >= 500 and not in_window(t)),
        "errors_outside_outages": {
            str(s): sum(1 for t, x in errors if x == s and not in_window(t)) for s in sorted({s for _, s in errors})
        },
        "faults": faults,
        "post": percentiles([dt for log in logs for dt in log["post"]]),
        "requests_per_s": round(sum(len(g["post"]) + len(g["next"]) + len(g["other"]) for g in logs) / elapsed, 1),
    }


def markdown(results: dict, args: argparse.Namespace) -> str:
    r = results["run"]
    rows = "".join(
        f"| {name} | {f['start_s']} | {f['length_s']} | {f['recovered_after_s']} | "
        f"{', '.join(f'{k}: {v}' for k, v in f['answers_in_window'].items()) or '–'} |\n"
        for name, f in r["faults"].items()
    )
    verdict = lambda ok: "**met**" if ok else "**not met**"  # noqa: E731
    return f"""
{HEADING} — {results["date"]}

Machine: {results["machine"]}, load average {results["load_average_end"]} at the end. Command: `{results["command"]}`.
{r["annotators"]} annotators for {r["seconds"]} s on two servers and one PostgreSQL (on a {args.disk_mb} MB
tmpfs); {r["acknowledged_writes"]} acknowledged mask writes, {r["requests_per_s"]} requests/s, POST p50
{r["post"]["p50_ms"]} ms / p95 {r["post"]["p95_ms"]} ms. Outage window: a fault's start to {args.grace:g} s after its end.

| fault | at (s) | lasted (s) | next acknowledged write after its end (s) | answers during its window (status: count; 0 = no server answered) |
|---|---|---|---|---|
{rows}
- acknowledged writes lost: {r["acknowledged_writes_lost"]} (must be 0): {verdict(r["acknowledged_writes_lost"] == 0)}
- images held by two annotators: {r["images_held_by_two"]} (must be 0): {verdict(r["images_held_by_two"] == 0)}
- 5xx outside the outage windows: {r["5xx_outside_outages"]} (must be 0): {verdict(r["5xx_outside_outages"] == 0)}; all
  failed answers outside them by status: {r["errors_outside_outages"] or "none"}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--images", type=int, default=15000, help="more than the annotators can finish")
    parser.add_argument("--masks", type=int, default=3)
    parser.add_argument("--restart-at", type=float, default=0.2)
    parser.add_argument("--outage", type=float, default=5.0, help="seconds PostgreSQL stays down")
    parser.add_argument("--kill-at", type=float, default=0.45)
    parser.add_argument("--fill-at", type=float, default=0.7)
    parser.add_argument("--fill-seconds", type=float, default=20.0)
    parser.add_argument("--grace", type=float, default=5.0, help="seconds after a fault still counted as its outage")
    parser.add_argument("--disk-mb", type=int, default=768, help="size of the tmpfs PostgreSQL lives on")
    parser.add_argument("--onnx-dir", type=Path, default=REPO / ".work" / "bench-onnx")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_chaos: mounting the tmpfs PostgreSQL lives on needs root")
    args.onnx_dir.mkdir(parents=True, exist_ok=True)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": "python " + " ".join(["bench/bench_chaos.py", *sys.argv[1:]]),
        "run": run(args),
        "load_average_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.write_results:
        with open(REPO / "bench" / "RESULTS.md", "a", encoding="utf-8") as f:
            f.write(markdown(results, args))


if __name__ == "__main__":
    main()
