"""A tile pyramid of a large image, cut once and kept on disk, for the page's zoomable view.

Frames and shapes. Level ``n`` of ``levels`` (0 = one pixel, ``levels - 1`` = the full
image, as Deep Zoom counts) is the upright image scaled by ``2 ** (n - (levels - 1))``: its size is
``ceil(W / 2**k) x ceil(H / 2**k)`` with ``k = levels - 1 - n``. A tile ``(col, row)`` of a level
covers the level's pixels ``[col*T, min((col+1)*T, w)) x [row*T, min((row+1)*T, h))`` (``T`` =
``TILE`` px, no overlap), stored as a JPEG.

Cut in two steps so that the first view never waits for the whole pyramid:

1. *Coarse levels* (long side <= ``COARSE_SIDE``) from the image's overview (``jobs/overview.py``:
   one shrink-on-load thumbnail, a JPEG decoded at 1/2..1/8 scale, a pyramidal TIFF's small page,
   which the whole-image embedding shares): well under 2 s for 20,000².
2. *The full pyramid* by libvips' ``dzsave`` in a child process at a low CPU priority
   (nice 10, ``jobs/pyramid_cut.py``: what the page waits for goes first), streaming the image top to
   bottom (memory ~ a strip of tiles, not the image), into a temporary folder renamed when done.

Both are kept as ``ROOT/<image sha256>/{coarse,full}/<level>/<col>_<row>.jpg`` (atomic: each
part appears whole or not at all). libvips beat Pillow here (bench/bench_pyramid.py): Pillow must
decode the whole image (3 bytes a pixel: 1.2 GB for 20,000²) before cutting.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maskloop.errors import UserError
from maskloop.exporter.vips_image import as_shown, vips
from maskloop.server.jobs.overview import OVERVIEW_SIDE, overview
from maskloop.server.jobs.pyramid_cut import CutChildren

__all__ = ["Geometry", "PyramidCache", "TileNotReady", "as_shown", "cut_coarse", "cut_full", "is_large"]

#: An image whose long side is more than this many pixels is shown as a tile pyramid.
LARGE_SIDE = 2048
#: Tile side, in pixels of its level.
TILE = 512
#: The coarse levels (cut first, from the overview) have a long side of at most this.
COARSE_SIDE = OVERVIEW_SIDE
#: Coarse cuts the page may ask for at once (``PyramidCache.view_slots``); each holds at most an
#: overview (12.6 MB) and libvips' shrink-on-load buffers (~140 MB for a 20,000² JPEG).
VIEW_CUTS = 2
QUALITY = 85


def is_large(width: int, height: int, large_side: int = LARGE_SIDE) -> bool:
    """Whether an image of this upright size is shown as a pyramid rather than as one picture."""
    return max(width, height) > large_side


@dataclass(frozen=True)
class Geometry:
    """The levels and tiles of one image's pyramid (see the module docstring for the frames)."""

    width: int
    height: int
    tile: int = TILE

    @property
    def levels(self) -> int:
        """Number of levels: level ``levels - 1`` is the full image, level 0 one pixel."""
        return math.ceil(math.log2(max(self.width, self.height, 1))) + 1

    def level_size(self, level: int) -> tuple[int, int]:
        """(w, h) of ``level`` in its own pixels."""
        k = self.levels - 1 - level
        return -(-self.width // 2**k), -(-self.height // 2**k)

    def grid(self, level: int) -> tuple[int, int]:
        """(cols, rows) of tiles at ``level``."""
        w, h = self.level_size(level)
        return -(-w // self.tile), -(-h // self.tile)

    @property
    def coarse_top(self) -> int:
        """The finest level cut from the thumbnail: the largest whose long side <= ``COARSE_SIDE``."""
        level = self.levels - 1
        while level > 0 and max(self.level_size(level)) > COARSE_SIDE:
            level -= 1
        return level

    @property
    def overview_level(self) -> int:
        """The finest level that is one tile (the page's overview and minimap; long side > T/2)."""
        level = self.levels - 1
        while level > 0 and max(self.level_size(level)) > self.tile:
            level -= 1
        return level

    def has_tile(self, level: int, col: int, row: int) -> bool:
        if not 0 <= level < self.levels:
            return False
        cols, rows = self.grid(level)
        return 0 <= col < cols and 0 <= row < rows

    def manifest(self) -> dict[str, Any]:
        """What the page needs: image size, tile side, level count and each level's size and grid."""
        return {
            "width": self.width,
            "height": self.height,
            "tile_size": self.tile,
            "levels": self.levels,
            "coarse_levels": self.coarse_top + 1,
            "level_sizes": [list(self.level_size(n)) for n in range(self.levels)],
        }


class TileNotReady(Exception):
    """The full pyramid is still being cut; the tile will exist in a while."""


def _write_atomic(data: bytes, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)


def cut_coarse(source: Path, geometry: Geometry, out: Path) -> None:
    """Levels 0..``coarse_top`` into ``out/<level>/<col>_<row>.jpg``, from the overview of ``source``
    (EXIF orientation applied; ``coarse_top``'s size), then halvings of it.

    Raises:
      UserError: libvips cannot read the image.
    """
    pyvips = vips()

    top = geometry.coarse_top
    w, h = geometry.level_size(top)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pixels = overview(source, geometry.width, geometry.height)
    assert pixels.shape == (h, w, 3), (pixels.shape, w, h)
    image = pyvips.Image.new_from_memory(pixels.tobytes(), w, h, 3, "uchar")
    for level in range(top, -1, -1):
        lw, lh = geometry.level_size(level)
        if (image.width, image.height) != (lw, lh):
            image = image.thumbnail_image(lw, height=lh, size="force").copy_memory()
        cols, rows = geometry.grid(level)
        for row in range(rows):
            for col in range(cols):
                x, y = col * geometry.tile, row * geometry.tile
                tile = image.crop(x, y, min(geometry.tile, lw - x), min(geometry.tile, lh - y))
                _write_atomic(tile.jpegsave_buffer(Q=QUALITY), tmp / str(level) / f"{col}_{row}.jpg")
    if out.exists():  # cut at the same time by another process: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        return
    tmp.rename(out)


def cut_full(source: Path, out: Path, orientation: int = 1) -> None:
    """Every level into ``out/<level>/<col>_<row>.jpg`` with libvips' dzsave, streaming ``source``
    top to bottom (random access only for an EXIF-rotated image)."""
    pyvips = vips()

    tmp = out.with_name(f"{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if orientation == 1:
            image = pyvips.Image.new_from_file(str(source), access="sequential")
        else:
            image = pyvips.Image.new_from_file(str(source)).autorot()
        as_shown(image).dzsave(
            str(tmp / "p"), layout="dz", tile_size=TILE, overlap=0, suffix=f".jpg[Q={QUALITY}]", depth="onepixel"
        )
        (tmp / "p_files").rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _quietly(job: Any, *args: Any) -> None:
    try:
        job(*args)
    except Exception:  # noqa: BLE001 - a background pre-cut; the request that needs it reports
        return


class PyramidCache:
    """The pyramids of a project's large images, under ``root`` (``WORKDIR/pyramids``).

    The coarse levels are cut in the request that first asks (one at a time per image); the full
    pyramid by one background thread in a child process at nice 10 (one image at a time bounds
    memory and CPU; ``jobs/pyramid_cut.py``).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._image_locks: dict[str, threading.Lock] = {}
        self._full: dict[str, Future[None]] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyramid")
        self._children = CutChildren()
        #: held by the page's manifest requests while they cut (bounds their memory apart from the
        #: embeddings' decode slots, so that the image on screen never queues behind an encode)
        self.view_slots = threading.BoundedSemaphore(VIEW_CUTS)

    def _image_lock(self, sha256: str) -> threading.Lock:
        with self._lock:
            return self._image_locks.setdefault(sha256, threading.Lock())

    def folder(self, sha256: str) -> Path:
        return self.root / sha256

    def manifest(self, sha256: str, source: Path, geometry: Geometry, orientation: int = 1) -> dict[str, Any]:
        """The pyramid's manifest; cuts the coarse levels now if missing and starts the full cut."""
        folder = self.folder(sha256)
        with self._image_lock(sha256):
            if not (folder / "coarse").is_dir():
                cut_coarse(source, geometry, folder / "coarse")
                _write_atomic(json.dumps(geometry.manifest()).encode(), folder / "manifest.json")
        self.start_full(sha256, source, orientation)
        return {**geometry.manifest(), "complete": (folder / "full").is_dir()}

    def start_full(self, sha256: str, source: Path, orientation: int = 1) -> Future[None] | None:
        """Queue the full cut unless done or under way; the future, or None when already done."""
        full = self.folder(sha256) / "full"
        if full.is_dir():
            return None
        with self._lock:
            future = self._full.get(sha256)
            if future is None or (future.done() and future.exception() is not None):
                future = self._executor.submit(self._children.cut, source, full, orientation)
                self._full[sha256] = future
            return future

    def precut(self, images: list[tuple[str, Path, Geometry, int]]) -> None:
        """Queue (sha256, path, geometry, orientation) images: every coarse cut, then every full one.
        A failure is left for the request that opens the image to report."""

        def coarse(sha256: str, source: Path, geometry: Geometry) -> None:
            folder = self.folder(sha256)
            with self._image_lock(sha256):
                if not (folder / "coarse").is_dir():
                    cut_coarse(source, geometry, folder / "coarse")
                    _write_atomic(json.dumps(geometry.manifest()).encode(), folder / "manifest.json")

        for sha256, source, geometry, _ in images:
            self._executor.submit(_quietly, coarse, sha256, source, geometry)
        for sha256, source, _, orientation in images:
            self.start_full(sha256, source, orientation)

    def tile(
        self, sha256: str, source: Path, geometry: Geometry, level: int, col: int, row: int, wait: float = 0.0
    ) -> Path:
        """The JPEG of one tile (which the caller has checked exists in ``geometry``).

        Raises:
          TileNotReady: a fine level whose cut has not finished within ``wait`` seconds.
        """
        folder = self.folder(sha256)
        if level <= geometry.coarse_top:
            if not (folder / "coarse").is_dir():
                self.manifest(sha256, source, geometry)
            return folder / "coarse" / str(level) / f"{col}_{row}.jpg"
        path = folder / "full" / str(level) / f"{col}_{row}.jpg"
        if path.is_file():
            return path
        future = self.start_full(sha256, source)
        if future is not None:
            deadline = time.monotonic() + wait
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.05)
            if future.done() and future.exception() is not None:
                exc = future.exception()
                raise UserError(f"{source.name}: the tile pyramid could not be cut ({exc})")
        if path.is_file():
            return path
        raise TileNotReady(f"level {level} of this image is still being cut; ask again in a few seconds")

    def shutdown(self) -> None:
        """Stop: queued cuts are dropped, a running full cut is killed and its partial folder removed."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._children.stop_all()
