"""The embedding cache on disk: ``<root>/<model_id>/<image_sha256>.npy``, float16 [1,256,64,64],
(a region of a large image, ``maskloop.tiles``: ``<image_sha256>@<x0>_<y0>_<x1>_<y1>.npy``),
written atomically and checked when read (a file that is not a finite array of that shape is
deleted and computed again). Also the one-line ``EmbeddingError`` and glibc's ``malloc_trim``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from maskloop.errors import DISK_FULL_MESSAGE, DiskFull, is_disk_full
from maskloop.tiles import Box, region_key

log = logging.getLogger(__name__)

EMBEDDING_SHAPE = (1, 256, 64, 64)


def release_freed_memory() -> None:
    """Give memory freed by this process back to the system (glibc's ``malloc_trim``; no-op elsewhere).

    Pillow decodes into 16 MB blocks, below glibc's mmap threshold, so a large image's memory
    stays in the decoding thread's malloc arena after it is freed: six 9000x9000 decodes in six
    request threads held 6 GB until trimmed.
    """
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        _LIBC = ctypes.CDLL(name) if name else False
    trim = getattr(_LIBC, "malloc_trim", None) if _LIBC else None
    if trim is not None:
        trim(0)


_LIBC: ctypes.CDLL | bool | None = None


class EmbeddingError(Exception):
    """This image cannot be embedded (unreadable file, or the model failed); one-line message."""


class EmbeddingCache:
    """fp16 ``.npy`` files of one model: ``<root>/<model_id>/<image_sha256>.npy``."""

    def __init__(self, root: Path, model_id: str) -> None:
        self.dir = root / model_id
        self.model_id = model_id
        self._checked: dict[str, tuple[int, int]] = {}  # sha -> (size, mtime_ns) of a file read and found sound
        self._lock = threading.Lock()

    def path(self, sha256: str, region: Box | None = None) -> Path:
        """The file of the whole image's embedding, or of a ``region`` (x0, y0, x1, y1 image pixels) of it."""
        return self.dir / (f"{sha256}.npy" if region is None else f"{sha256}@{region_key(region)}.npy")

    def has(self, sha256: str, region: Box | None = None) -> bool:
        """A file exists (soundness is checked when it is read)."""
        return self.path(sha256, region).is_file()

    def read(self, sha256: str, region: Box | None = None) -> bytes | None:
        """The ``.npy`` bytes (float16 [1,256,64,64]), or None if absent; a corrupt file is deleted."""
        path = self.path(sha256, region)
        sha256 = path.stem  # the key of what this process has checked
        try:
            data = path.read_bytes()
            st = path.stat()
        except OSError:
            return None
        with self._lock:
            known = self._checked.get(sha256) == (st.st_size, st.st_mtime_ns)
        if known and len(data) == st.st_size:
            return data
        if not self._sound(data):
            log.warning("embedding cache file %s is corrupt; computing it again", path)
            path.unlink(missing_ok=True)
            with self._lock:
                self._checked.pop(sha256, None)
            return None
        with self._lock:
            self._checked[sha256] = (st.st_size, st.st_mtime_ns)
        return data

    @staticmethod
    def _sound(data: bytes) -> bool:
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return False
        return array.shape == EMBEDDING_SHAPE and array.dtype == np.float16 and bool(np.isfinite(array).all())

    def write(self, sha256: str, embedding: npt.NDArray[np.floating[Any]], region: Box | None = None) -> bytes:
        """Store one embedding ([256,64,64] or [1,256,64,64], any float dtype) as float16; return the bytes."""
        array = np.ascontiguousarray(embedding.reshape(EMBEDDING_SHAPE).astype(np.float16))
        if not np.isfinite(array).all():
            raise EmbeddingError("the model produced an embedding with values out of float16 range")
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        data = buffer.getvalue()
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path(sha256, region)
        sha256 = path.stem
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # no partial file left behind
            if is_disk_full(exc):
                raise DiskFull(f"no room for this image's embedding: the server's {DISK_FULL_MESSAGE}") from exc
            raise
        st = path.stat()
        with self._lock:
            self._checked[sha256] = (st.st_size, st.st_mtime_ns)
        return data
