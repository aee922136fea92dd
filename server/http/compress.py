"""gzip copies of the page's large static files (onnxruntime-web's 14 MB wasm compresses to ~4 MB),
made once per file version and kept on disk, so a request never waits for more than a file read.

A file is sent compressed when the client accepts gzip, the file is at least ``MIN_BYTES`` and
gzip saves at least ``MIN_SAVING`` of it (an fp32 decoder's weights barely compress: those are
sent as they are, and the decision is remembered).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

MIN_BYTES = 256 * 1024
MIN_SAVING = 0.2
LEVEL = 6  # level 9 saves ~1% more of the wasm and takes 3x as long to make
_LOCK = threading.Lock()


def _key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:24]


def gzip_copy(path: Path, cache_dir: Path) -> Path | None:
    """The gzip copy of ``path`` in ``cache_dir`` (made now if missing), or None when not worth it.

    Arguments:
      path: a file; its size and mtime name the copy, so an updated file gets a new one.
      cache_dir: where copies (``<key>.gz``) and "not worth it" marks (``<key>.raw``) live.
    """
    if path.stat().st_size < MIN_BYTES:
        return None
    key = _key(path)
    gz, raw = cache_dir / f"{key}.gz", cache_dir / f"{key}.raw"
    if gz.is_file():
        return gz
    if raw.is_file():
        return None
    with _LOCK:  # one compression at a time; a second request for the same file waits for it
        if gz.is_file():
            return gz
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f"{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(path, "rb") as src, gzip.open(tmp, "wb", compresslevel=LEVEL) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if tmp.stat().st_size > (1 - MIN_SAVING) * path.stat().st_size:
            tmp.unlink()
            raw.touch()
            return None
        tmp.replace(gz)
        return gz


def prepare(paths: Iterable[Path], cache_dir: Path) -> threading.Thread:
    """Make the gzip copies of ``paths`` in a background thread (at server start)."""

    def run() -> None:
        for path in paths:
            try:
                gzip_copy(path, cache_dir)
            except OSError:
                pass  # the file is then sent as it is; a request will try again

    thread = threading.Thread(target=run, name="maskloop-gzip", daemon=True)
    thread.start()
    return thread
