"""A throwaway PostgreSQL server in a temporary folder, for tests and benchmarks.

Debian's ``postgresql`` package (``initdb``, ``pg_ctl``); as root the server runs as the
``postgres`` user, since ``initdb`` refuses root. It listens on 127.0.0.1 at a free port and on
a Unix socket in its own folder; authentication is ``trust`` (local only). Durability settings
are PostgreSQL's defaults (``fsync``, ``synchronous_commit=on``).

Each cluster's folder names the process that started it (``owner.pid``). A process killed before
``stop()`` (a SIGKILLed test run) leaves its server running; the next ``start()`` on the machine
stops and removes every such orphan (``sweep_orphans``), never a live process's cluster.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from maskloop.errors import UserError
from maskloop.processes import alive


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` with ``initdb``, or the one on ``PATH``; None if absent."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


OWNER_FILE = "owner.pid"  # in a cluster's folder: the pid of the process that started it


def _as_postgres(*cmd: str) -> list[str]:
    """``cmd`` to run as the ``postgres`` user when this process is root (``initdb`` refuses root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


def _stop_command(bin_dir: Path, data: Path) -> list[str]:
    """``pg_ctl stop`` (immediate: a throwaway cluster has nothing to flush) for the cluster in ``data``."""
    return [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]


def sweep_orphans(bin_dir: Path, tmp: Path | None = None) -> list[Path]:
    """Stop and remove the clusters in ``tmp`` (default: the temp folder) whose starting process has
    died; returns their folders. Clusters without ``owner.pid`` (made before it existed, or
    starting right now) are left alone."""
    swept = []
    for root in Path(tmp or tempfile.gettempdir()).glob("maskloop-pg-*"):
        try:
            owner = int((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if alive(owner):
            continue
        data = root / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_postgres(*_stop_command(bin_dir, data)), capture_output=True, text=True)
        shutil.rmtree(root, ignore_errors=True)
        swept.append(root)
    return swept


class TempCluster:
    """``start()`` a fresh cluster; ``url(dbname)`` to connect; ``halt()``/``resume()`` to restart it;
    ``stop()`` removes it all."""

    def __init__(self, parent: Path | None = None) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise UserError("PostgreSQL is not installed: apt-get install postgresql (scripts/setup --test does)")
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="maskloop-pg-", dir=parent))  # parent: e.g. a small disk
        self.data = self.root / "data"
        self.port = free_port()
        self._is_root = os.geteuid() == 0

    def _run(self, *cmd: str) -> None:
        result = subprocess.run(_as_postgres(*cmd), capture_output=True, text=True)
        if result.returncode != 0:
            raise UserError(f"{Path(cmd[0]).name} failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")

    def start(self) -> TempCluster:
        sweep_orphans(self.bin_dir)
        (self.root / OWNER_FILE).write_text(str(os.getpid()))
        if self._is_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C.UTF-8",
        )  # fmt: skip
        return self.resume()

    def halt(self) -> None:
        """Stop the server as a crash would (``-m immediate``), keeping its data: ``resume()`` restarts it."""
        self._run(*_stop_command(self.bin_dir, self.data))

    def resume(self) -> TempCluster:
        """Start (again) the server on this cluster's data, same port."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )
        return self

    def url(self, dbname: str = "postgres", schema: str | None = None) -> str:
        """A ``postgresql://`` URL over the Unix socket; ``schema`` sets the search path."""
        url = f"postgresql://postgres@/{dbname}?host={self.root}&port={self.port}"
        return url + (f"&options=-csearch_path%3D{schema}" if schema else "")

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(*_stop_command(self.bin_dir, self.data))
        shutil.rmtree(self.root, ignore_errors=True)
