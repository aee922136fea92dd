"""Shared caches written by several processes at once: a lock across processes and an atomic
folder swap.

A cache folder that many servers read (``cache_dir()/onnx/<model id>/``, the decoder exported once
per model) is written under ``file_lock`` into a temporary folder beside it, then moved into place
by ``replace_dir``: a reader sees either no folder or a complete one, and two servers that start at
once export it once (the second waits, then finds it made).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created if missing) for the ``with`` block.

    ``on_wait`` is called once when another process holds the lock, before waiting for it. The
    lock goes with the process, so one killed mid-way never leaves it held.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def temp_dir_beside(target: Path) -> Path:
    """An empty folder next to ``target`` (same file system, so ``replace_dir`` is a rename),
    named for this process; what a killed process left there under that name is removed."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def remove_leftovers(target: Path) -> None:
    """Delete the temporary folders of ``target`` that interrupted writers left (hold the lock)."""
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in target.parent.glob(f".{target.name}.old-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished folder ``tmp`` to ``target`` by renames; an existing (stale) ``target`` is
    moved aside first and then removed."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)
