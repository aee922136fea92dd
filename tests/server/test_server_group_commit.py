"""Group commit on a real SQLite file: writers share WAL fsyncs, none returns before one covering
its commit has finished, and the server's writing requests go through it (reads do not)."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

from support.data import image_ids, square_mask

from maskloop import masks
from maskloop.server.store.db import connect, open_database, transaction
from maskloop.server.store.group_commit import GroupCommit


def _store(tmp_path):
    path = tmp_path / "maskloop.db"
    conn = open_database(path)
    conn.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL)")
    conn.close()
    return path


def test_concurrent_writers_share_fsyncs_and_every_commit_is_kept(tmp_path):
    path = _store(tmp_path)
    group = GroupCommit(path)
    writers, rounds = 12, 10
    start = threading.Barrier(writers)

    def write(writer: int) -> None:
        conn = connect(path, synchronous="NORMAL")
        start.wait()
        for _ in range(rounds):
            with transaction(conn):
                conn.execute("INSERT INTO note (writer) VALUES (?)", (writer,))
            group.sync()
        conn.close()

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    group.close()
    assert group.calls == writers * rounds
    assert 1 <= group.fsyncs < group.calls, "concurrent writers must share fsyncs"
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM note").fetchone()[0] == writers * rounds
    check.close()


class _HeldFirstSync(GroupCommit):
    """A GroupCommit whose first fdatasync waits until the test lets it go (to order two writers)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.first_running = threading.Event()
        self.release_first = threading.Event()
        self.finished_at: list[int] = []  # fsyncs done when each sync() returned

    def _fdatasync(self) -> None:
        if not self.first_running.is_set():
            self.first_running.set()
            assert self.release_first.wait(10)
        super()._fdatasync()


def test_a_commit_made_during_a_sync_waits_for_the_next_one(tmp_path):
    path = _store(tmp_path)
    group = _HeldFirstSync(path)
    early, late = connect(path, synchronous="NORMAL"), connect(path, synchronous="NORMAL")
    early.execute("INSERT INTO note (writer) VALUES (1)")
    first = threading.Thread(target=group.sync)
    first.start()
    assert group.first_running.wait(10)
    late.execute("INSERT INTO note (writer) VALUES (2)")  # committed while the first fsync runs
    returned = threading.Event()

    def second() -> None:
        group.sync()
        returned.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    assert not returned.wait(0.3), "a sync that began before this commit does not cover it"
    group.release_first.set()
    first.join(10)
    waiter.join(10)
    assert returned.is_set() and group.fsyncs == 2 and group.calls == 2
    for closing in (early, late, group):
        closing.close()


def test_the_servers_writing_requests_wait_for_a_shared_fsync(app, client):
    from maskloop.server.http.db import GROUP_COMMIT_KEY

    group = app.extensions[GROUP_COMMIT_KEY]
    image = image_ids(client)["a.jpg"]  # 64 x 48
    category = client.post("/api/categories", json={"name": "grouped"}).get_json()["id"]
    assert group.calls == 1
    for path in ("/api/images", f"/api/images/{image}/annotations"):
        assert client.get(path).status_code == 200
    assert group.calls == 1, "a request that wrote nothing does not sync"

    def post(k: int) -> int:
        body = {"category_id": category, "segmentation": masks.encode(square_mask(48, 64, k, k, k + 9, k + 9))}
        return app.test_client().post(f"/api/images/{image}/annotations", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(post, range(16))) == [201] * 16
    assert group.calls == 17 and group.fsyncs <= group.calls
    conn = sqlite3.connect(app.config["DATABASE"])
    assert conn.execute("SELECT count(*) FROM annotation WHERE image_id = ?", (image,)).fetchone()[0] == 16
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # other connections keep FULL
    conn.close()
