"""The embedding cache on disk: ``<root>/<model_id>/<image_sha256>.npy``, float16 [1,256,64,64]
(a region of a large image, ``maskloop.tiles``: ``<image_sha256>@<x0>_<y0>_<x1>_<y1>.npy``).

Each entry is the ``.npy`` bytes followed by a 12-byte trailer, ``b"mlcrc32\\0"`` and the
big-endian CRC-32 of those bytes (``np.load`` ignores bytes after the array). Entries are
written to a temporary file, fsynced and renamed. A read checks the CRC (0.9 ms for the 2 MiB
entry on a 2-core CPU; sha256 takes 1.4 ms): a mismatch (flipped bytes, a torn file) is logged,
deleted and computed again. An entry from before the checksum (no trailer) is accepted when it
is a finite array of the right shape and dtype, and rewritten with its checksum. Also the
one-line ``EmbeddingError`` and glibc's ``malloc_trim``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import logging
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from maskloop.errors import DISK_FULL_MESSAGE, DiskFull, is_disk_full
from maskloop.tiles import Box, region_key

log = logging.getLogger(__name__)

EMBEDDING_SHAPE = (1, 256, 64, 64)

#: After each entry's ``.npy`` bytes: 8 magic bytes and the CRC-32 of those bytes (big-endian).
_TRAILER = struct.Struct(">8sI")
_MAGIC = b"mlcrc32\0"


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
    """fp16 ``.npy`` files of one model, each with a CRC-32 trailer: ``<root>/<model_id>/<image_sha256>.npy``."""

    def __init__(self, root: Path, model_id: str) -> None:
        self.dir = root / model_id
        self.model_id = model_id

    def path(self, sha256: str, region: Box | None = None) -> Path:
        """The file of the whole image's embedding, or of a ``region`` (x0, y0, x1, y1 image pixels) of it."""
        return self.dir / (f"{sha256}.npy" if region is None else f"{sha256}@{region_key(region)}.npy")

    def has(self, sha256: str, region: Box | None = None) -> bool:
        """A file exists (soundness is checked when it is read)."""
        return self.path(sha256, region).is_file()

    def read(self, sha256: str, region: Box | None = None) -> bytes | None:
        """The ``.npy`` bytes (float16 [1,256,64,64], without the trailer) of the whole image's
        embedding or of a ``region``, or None if absent; a damaged entry is deleted (the caller
        computes it again)."""
        path = self.path(sha256, region)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        npy, crc = _split(data)
        if crc is not None and zlib.crc32(npy) == crc:
            return npy
        if crc is None and self._sound(data):  # written before entries had a checksum
            self._store(path, data)
            return data
        log.warning(
            "embedding cache file %s %s; computing it again",
            path,
            "fails its checksum" if crc is not None else "is corrupt",
        )
        path.unlink(missing_ok=True)
        return None

    @staticmethod
    def _sound(data: bytes) -> bool:
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return False
        return array.shape == EMBEDDING_SHAPE and array.dtype == np.float16 and bool(np.isfinite(array).all())

    def write(self, sha256: str, embedding: npt.NDArray[np.floating[Any]], region: Box | None = None) -> bytes:
        """Store one embedding ([256,64,64] or [1,256,64,64], any float dtype) of the whole image or of a
        ``region`` as float16; return the ``.npy`` bytes (without the trailer)."""
        array = np.ascontiguousarray(embedding.reshape(EMBEDDING_SHAPE).astype(np.float16))
        if not np.isfinite(array).all():
            raise EmbeddingError("the model produced an embedding with values out of float16 range")
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        data = buffer.getvalue()
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._store(self.path(sha256, region), data, quiet=False)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull(f"no room for this image's embedding: the server's {DISK_FULL_MESSAGE}") from exc
            raise
        return data

    @staticmethod
    def _store(path: Path, npy: bytes, quiet: bool = True) -> None:
        """Write ``npy`` and its trailer to ``path`` atomically: a temporary file, fsync, rename.

        ``quiet``: an OSError is logged and dropped (rewriting an old entry is only a bonus).
        """
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(npy)
                handle.write(_TRAILER.pack(_MAGIC, zlib.crc32(npy)))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # no partial file left behind
            if not quiet:
                raise
            log.warning("could not add a checksum to embedding cache file %s: %s", path, exc)


def _split(data: bytes) -> tuple[bytes, int | None]:
    """An entry's bytes -> (``.npy`` bytes, the CRC-32 its trailer records, or None without a trailer)."""
    if len(data) >= _TRAILER.size:
        magic, crc = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
        if magic == _MAGIC:
            return data[: -_TRAILER.size], int(crc)
    return data, None


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def to_float32_npy(data: bytes) -> bytes:
    """float16 ``.npy`` bytes -> the same array as float32 ``.npy`` bytes."""
    buffer = io.BytesIO()
    np.save(buffer, np.load(io.BytesIO(data), allow_pickle=False).astype(np.float32), allow_pickle=False)
    return buffer.getvalue()
