"""Exports for the HTTP API (COCO JSON, data set zips): computed in a child process, one at a time,
cached by version.

A polygon export of ~10k masks takes seconds of CPU. Run in a request thread it holds the GIL
and one of the server's few threads, and eight at once starve every other request. So:

  * the work runs in one shared child process (``spawn``, lower CPU priority), one export at a
    time for the whole server; request threads only wait for it;
  * the result is written to ``<workdir>/exports/`` and served from there, and reused while the
    store is unchanged: the store's version is ``db.data_version`` read on one long-lived
    connection, which changes whenever any other connection (or process) commits;
  * a request that finds an export of the same kind and version running waits for it instead of
    starting another; at most ``max_waiting`` requests wait at once, later ones get ``ExportBusy``.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from maskloop.errors import UserError
from maskloop.server.store.db import Connection

#: Lower priority of the export process, so that annotation requests get the CPU first.
EXPORT_NICENESS = 10

_POOL_LOCK = threading.Lock()
_POOL: concurrent.futures.ProcessPoolExecutor | None = None


class ExportFailed(Exception):
    """The export could not be made now (worker stopped, timed out); one-line message, answer 503."""


class ExportBusy(ExportFailed):
    """Too many export requests are already waiting; the caller should answer 503 and retry later."""


@dataclass(frozen=True)
class ExportKind:
    """What one export holds: ``fmt`` (rle | polygon, for COCO), ``tolerance`` in pixels, annotation
    statuses, review filter, and ``target``: ``coco`` (a JSON file) or a data set format of
    ``export_dataset.FOLDER_FORMATS`` (a zip of the folder, images included)."""

    fmt: str
    tolerance: float
    statuses: tuple[str, ...]
    review: str | None = None  # reviewed | rejected | unreviewed; None: any
    target: str = "coco"

    def file_name(self, version: int) -> str:
        review = f"-{self.review}" if self.review else ""
        filters = f"t{self.tolerance:g}-{'+'.join(self.statuses)}{review}-v{version}"
        if self.target == "coco":
            return f"coco-{self.fmt}-{filters}.json"
        return f"{self.target}-{filters}.zip"

    @property
    def mimetype(self) -> str:
        return "application/json" if self.target == "coco" else "application/zip"


@dataclass
class _Job:
    version: int
    path: Path
    future: concurrent.futures.Future[int]
    stale: list[Path]  # files of the export this one replaces, deleted once it is written


def _init_worker() -> None:
    """In the export process: lower priority, and exit when the server is gone (even by SIGKILL)."""
    try:
        os.nice(EXPORT_NICENESS)
    except OSError:
        pass
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="maskloop-export-parent-watch", daemon=True).start()


def _pool() -> concurrent.futures.ProcessPoolExecutor:
    """The process-wide export worker (one child; started on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
            )
        return _POOL


def _reset_pool() -> None:
    """Forget a broken worker (e.g. killed for memory); the next export starts a new one."""
    global _POOL
    with _POOL_LOCK:
        _POOL = None


def write_export(database: str, kind: ExportKind, out: str, data_dir: str | None = None) -> int:
    """Child side: export the store at ``database`` to ``out`` (atomically); returns the annotation count.
    A data set export (``kind.target`` not ``coco``) copies the images from ``data_dir``."""
    from maskloop.server.jobs.coco import export_coco
    from maskloop.server.store.db import connect

    conn = connect(database)
    try:
        if kind.target != "coco":
            from maskloop.server.jobs.export_dataset import write_dataset
            from maskloop.server.jobs.export_sink import ZipSink

            if data_dir is None:
                raise UserError("this server has no data folder to copy images from")
            report = write_dataset(
                conn,
                Path(data_dir),
                kind.target,
                ZipSink(Path(out), f"maskloop-{kind.target}"),
                statuses=kind.statuses,
                review=kind.review,
                tolerance=kind.tolerance,
            )
            return report.annotations
        data = export_coco(
            conn,
            fmt=kind.fmt,
            tolerance=kind.tolerance,
            statuses=kind.statuses,
            review=kind.review,
            data_dir=Path(data_dir) if data_dir is not None else None,
        )
    finally:
        conn.close()
    tmp = f"{out}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, out)
    return len(data["annotations"])


class ExportCache:
    """Exports of one store (``database``), files kept in ``folder``.

    Arguments:
      database: the store (``db.connect`` target: SQLite file or PostgreSQL URL).
      folder: where export files are written (emptied of old exports at start).
      max_waiting: most requests waiting for an export at once.
      timeout: seconds a request waits before giving up.
      data_dir: the images, which data set exports (zips) copy.
    """

    def __init__(
        self, database: str, folder: Path, max_waiting: int = 4, timeout: float = 600.0, data_dir: Path | None = None
    ) -> None:
        self.database = database
        self.folder = folder
        self.data_dir = data_dir
        self.max_waiting = max_waiting
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: Connection | None = None  # for PRAGMA data_version only
        self._jobs: dict[ExportKind, _Job] = {}
        self._waiting = 0
        if folder.is_dir():  # versions restart with the connection: files of an earlier run are stale
            for pattern in ("coco-*.json*", "*-v*.zip*"):
                for old in folder.glob(pattern):
                    old.unlink(missing_ok=True)

    def _version(self) -> int:
        from maskloop.server.store.db import connect, data_version

        if self._conn is None:
            self._conn = connect(self.database)
        return data_version(self._conn)

    def open(self, kind: ExportKind) -> IO[bytes]:
        """The export of the store as it is now, opened for reading (computed or reused).

        Raises:
          ExportBusy: ``max_waiting`` requests are already waiting.
          ExportFailed: the export failed or took longer than ``timeout``.
          UserError: the export's arguments are wrong (checked in the child).
        """
        for _attempt in range(3):  # a newer export may delete the file between the wait and the open
            job = self._job(kind)
            try:
                job.future.result(timeout=self.timeout)
            except concurrent.futures.TimeoutError:
                raise ExportFailed(f"the export took longer than {self.timeout:.0f} s") from None
            except BrokenProcessPool:
                _reset_pool()
                with self._lock:
                    self._jobs.pop(kind, None)
                raise ExportFailed("the export process stopped (out of memory?); try again") from None
            except UserError:
                raise
            except Exception as exc:
                raise ExportFailed(
                    f"the export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                ) from None
            finally:
                with self._lock:
                    self._waiting -= 1
            for old in job.stale:
                old.unlink(missing_ok=True)
            try:
                return open(job.path, "rb")
            except FileNotFoundError:
                continue
        raise ExportFailed("the store kept changing during the export; try again")

    def _job(self, kind: ExportKind) -> _Job:
        """The job that answers ``kind`` at the current version (started if needed); counts a waiter."""
        with self._lock:
            version = self._version()
            job = self._jobs.get(kind)
            failed = job is not None and job.future.done() and job.future.exception() is not None
            if job is None or job.version != version or failed:
                if self._waiting >= self.max_waiting:
                    raise ExportBusy(f"{self._waiting} export requests are already waiting; try again in a few seconds")
                self.folder.mkdir(parents=True, exist_ok=True)
                path = self.folder / kind.file_name(version)
                data_dir = str(self.data_dir) if self.data_dir is not None else None
                future = _pool().submit(write_export, str(self.database), kind, str(path), data_dir)
                stale = [job.path] if job is not None and job.path != path else []
                job = self._jobs[kind] = _Job(version, path, future, stale)
            elif not job.future.done() and self._waiting >= self.max_waiting:
                raise ExportBusy(f"{self._waiting} export requests are already waiting; try again in a few seconds")
            self._waiting += 1
            return job

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
