"""Group commit for the server's SQLite store: writers that commit together share one fsync.

With ``synchronous=FULL`` SQLite fsyncs the write-ahead log inside every ``COMMIT``, while it
holds the store's single write lock, so N concurrent writers queue for N fsyncs one after the
other (12 writers on a busy 2-core VM: p95 8× a lone writer's). The server's request connections
instead commit with ``synchronous=NORMAL`` (the commit is in the WAL in the OS's page cache: it
survives a killed process, not yet a power cut; the write lock is held for microseconds) and,
before the request is answered, call ``GroupCommit.sync``: it returns once an ``fdatasync`` of the
WAL that *started after* the caller's commit has finished. One sync runs at a time, and every
writer that committed while it ran is covered by the next one, so writers arriving within one
fsync's time share one. ``synchronous=NORMAL`` already syncs the WAL before each checkpoint and
the database after it, so the WAL sync is the only one FULL adds; each request keeps its own
transaction (an error rolls back only that request's writes).

Readers may see a commit a few milliseconds before it is on disk; no answer that *wrote* is sent
before it is. Other connections (CLI commands, background jobs) keep ``synchronous=FULL``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from maskloop.errors import DISK_FULL_MESSAGE, DiskFull, is_disk_full


class GroupCommit:
    """Shared WAL syncs of one SQLite database (a file path).

    Holds a connection open for its lifetime, so that SQLite never deletes the WAL file (it does
    when the last connection closes) and the file this syncs stays the one writers append to.
    That also spares the server a checkpoint and a new WAL file each time its last request
    connection closes.
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self.wal = Path(f"{database}-wal")
        self._keeper = sqlite3.connect(str(database), check_same_thread=False)
        self._keeper.execute("PRAGMA journal_mode = WAL")
        self._cond = threading.Condition()
        self._started = 0  # syncs begun
        self._finished = 0  # syncs finished (in order: one at a time)
        self._syncing = False
        self._fd: int | None = None
        #: How many ``sync`` calls and how many fdatasyncs there were (the ratio is the grouping).
        self.calls = 0
        self.fsyncs = 0

    def sync(self) -> None:
        """Return once everything committed before this call is on disk (one shared fdatasync).

        Raises:
          DiskFull: the disk is full (the commit may be lost: the request must not say 2xx).
          OSError: the sync failed.
        """
        with self._cond:
            self.calls += 1
            needed = self._started + 1  # the first sync that starts from now on covers this commit
            while self._finished < needed:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True
                self._started += 1
                ticket = self._started
                try:
                    self._cond.release()
                    try:
                        self._fdatasync()
                    finally:
                        self._cond.acquire()
                finally:
                    self._syncing = False
                    self._cond.notify_all()
                self._finished = ticket

    def _fdatasync(self) -> None:
        """fdatasync the WAL file, reopened if SQLite replaced it (called by one thread at a time)."""
        try:
            if self._fd is not None and os.fstat(self._fd).st_ino != _inode(self.wal):
                os.close(self._fd)
                self._fd = None
            if self._fd is None:
                self._fd = os.open(self.wal, os.O_RDONLY)
                _fsync_dir(self.wal.parent)  # a WAL file SQLite just created: its name on disk too
            os.fdatasync(self._fd)
            self.fsyncs += 1
        except FileNotFoundError:  # no WAL: nothing was written since the last checkpoint deleted it
            return
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull(f"the change may not be saved: the {DISK_FULL_MESSAGE}") from exc
            raise

    def close(self) -> None:
        """Close the WAL file and the connection that keeps it (the object is unusable after)."""
        with self._cond:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        self._keeper.close()


def _inode(path: Path) -> int:
    return os.stat(path).st_ino


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
