"""The image catalogue: which files of the data folder are images, their hashes, sizes and status.

A scan walks the data folder (hidden files and folders and the work folder excluded), reads
each new or changed image file once (sha256 of its bytes, size after EXIF orientation, a
decode to catch truncated files) and records it in the ``image`` table. Files that cannot be
used are recorded with an ``error`` and listed with status ``error``; the images themselves are
never modified.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from maskloop.digest import sha256_file
from maskloop.server.jobs.overview import OVERVIEW_SIDE, has_overview
from maskloop.server.store.db import Connection, Row, open_database
from maskloop.server.store.images import ImageFile, image_errors, record_scan, scanned_files

#: Files with these suffixes (any case) are treated as images; anything else is skipped.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
#: Names (lower case, any suffix) of the documents a folder of images often has beside them.
DOCUMENT_NAMES = ("readme", "license", "licence", "licenses", "licences", "copying", "notice", "authors", "citation")


def is_document(name: str) -> bool:
    """Whether a skipped file is a folder's own documentation (``README``, ``LICENSE*``, ``*.md``),
    which ``serve`` does not count among the files that are not images."""
    base = name.rsplit("/", 1)[-1].lower()
    return base.endswith(".md") or base.split(".", 1)[0].startswith(DOCUMENT_NAMES)


#: Formats a browser shows as they are; others (TIFF) are converted for display.
BROWSER_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}
#: Formats that can hold an animation (only frame 0 is annotated).
ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP"})
#: Largest image (width x height) maskloop decodes whole by default: Pillow's decompression-bomb
#: limit. Configurable (``MAX_IMAGE_PIXELS``); one decode of such an image takes ~3 bytes per
#: pixel. Larger images that libvips reads are accepted and never decoded whole (``probe_image``).
DEFAULT_MAX_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485  # Pillow's value; None would mean its guard is off
#: SAM's encoder input side: an image is resized so that its long side is this long.
MODEL_INPUT_SIDE = 1024
_EXIF_ORIENTATION = 0x0112


class OutsideDataFolder(Exception):
    """A file of the data folder resolves (through a symlink) to a file outside it."""


def resolve_inside(data_dir: Path, file_name: str) -> Path | None:
    """The real path of ``data_dir/file_name``, symlinks resolved now; None when it is not a file.

    Raises:
      OutsideDataFolder: the real path is outside ``data_dir`` (a symlink leading out of it).
    """
    root = data_dir.resolve()
    try:
        real = (root / file_name).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not real.is_relative_to(root):
        raise OutsideDataFolder(f"{file_name} is a link to a file outside the data folder")
    return real if real.is_file() else None


@dataclass
class ImageProbe:
    """What one read of an image file tells us. ``width``/``height`` are after EXIF orientation."""

    sha256: str | None
    width: int | None = None
    height: int | None = None
    orientation: int = 1
    format: str | None = None
    error: str | None = None


def probe_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageProbe:
    """Hash and check one file; never raises for a bad file (the problem goes into ``error``).

    Besides unreadable files, refused: more than ``max_pixels`` pixels in an image that would be
    decoded whole (not a large JPEG or TIFF, see ``_probe_vips``), and images so thin that SAM's
    resize to a 1024 long side leaves the short side under one pixel (e.g. 60000x1).
    """
    try:
        size = path.stat().st_size
        # streamed: a 20,000² JPEG is 80 MB, and it is never needed whole in memory
        sha256 = sha256_file(path) if size > _READ_WHOLE_BYTES else hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return ImageProbe(None, error=f"cannot read the file ({exc.strerror or exc})")
    if not size:
        return ImageProbe(sha256, error="empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is max_pixels
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    return _probe_vips(path, sha256, max_pixels) or _too_large(sha256, width, height, max_pixels)
                if min(width, height) < 1 or int(min(width, height) * MODEL_INPUT_SIDE / max(width, height) + 0.5) < 1:
                    return ImageProbe(
                        sha256,
                        error=f"image too thin: {width}x{height} has a side under one pixel once "
                        f"resized to SAM's {MODEL_INPUT_SIDE}-pixel input",
                    )
                fmt = img.format
                orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
                orientation = orientation if orientation in range(1, 9) else 1
                if img.format == "JPEG":  # decode at 1/8 scale: catches truncation, costs little
                    img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                if img.format == "JPEG" or width * height <= _WHOLE_DECODE_PIXELS:
                    img.load()
                else:  # a large TIFF or PNG: its header only; libvips reads it by strips later
                    return _probe_vips(path, sha256, max_pixels) or ImageProbe(sha256, width, height, 1, fmt)
    except Image.DecompressionBombError:
        probe = _probe_vips(path, sha256, max_pixels)
        if probe is not None:
            return probe
        return ImageProbe(
            sha256,
            error=f"image too large: more than {2 * DEFAULT_MAX_PIXELS} pixels (decompression bomb guard), "
            "and libvips cannot read it",
        )
    except UnidentifiedImageError:
        probe = _probe_vips(path, sha256, max_pixels)  # e.g. BigTIFF, which Pillow does not read
        if probe is not None:
            return probe
        return ImageProbe(sha256, error="not an image file Pillow can read")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return ImageProbe(
            sha256, error=f"unreadable image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        )
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: width and height swap
        width, height = height, width
    return ImageProbe(sha256, width, height, orientation, fmt)


#: Above this many pixels a non-JPEG image is not decoded to check it (a 9,000² PNG is 243 MB).
_WHOLE_DECODE_PIXELS = 4096 * 4096
#: Files larger than this are hashed in 1 MiB blocks instead of read whole.
_READ_WHOLE_BYTES = 16 * 2**20
_VIPS_FORMATS = {"jpegload": "JPEG", "tiffload": "TIFF", "pngload": "PNG", "webpload": "WEBP"}
#: libvips loaders of the formats accepted beyond ``max_pixels``: JPEG (shrink-on-load at 1/8
#: scale, regions decoded top to bottom a strip at a time) and TIFF (tiles, strips, pages).
_REGION_LOADERS = frozenset({"jpegload", "tiffload"})


def _too_large(sha256: str, width: int, height: int, max_pixels: int) -> ImageProbe:
    return ImageProbe(
        sha256,
        error=f"image too large: {width}x{height} is more than {max_pixels} pixels "
        "(MASKLOOP_MAX_IMAGE_PIXELS sets the limit for images decoded whole; a JPEG or TIFF "
        f"larger than {OVERVIEW_SIDE} px on its long side has no limit)",
    )


def _probe_vips(path: Path, sha256: str, max_pixels: int) -> ImageProbe | None:
    """Size, orientation and format of an image from its header by libvips (BigTIFF, pyramidal
    TIFF, images past ``max_pixels`` or Pillow's bomb guard); None when libvips cannot read it
    either. An image over ``max_pixels`` is accepted when it is never decoded whole: a JPEG or TIFF
    (``_REGION_LOADERS``) larger than its overview (long side > ``OVERVIEW_SIDE``), which is shown
    as a tile pyramid, embedded from its overview and read tile by tile. A PNG is not: zlib packs
    a bomb a thousand to one, and a PNG cannot be read by regions."""
    try:
        import pyvips

        image = pyvips.Image.new_from_file(str(path))
        loader = str(image.get("vips-loader"))
        orientation = int(image.get("orientation")) if image.get_typeof("orientation") else 1
    except Exception:  # noqa: BLE001 - any failure means "not readable this way"
        return None
    width, height = image.width, image.height
    if width * height > max_pixels and not (loader in _REGION_LOADERS and has_overview(width, height)):
        return _too_large(sha256, width, height, max_pixels)
    orientation = orientation if orientation in range(1, 9) else 1
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return ImageProbe(
        sha256, width, height, orientation, _VIPS_FORMATS.get(loader, loader.removesuffix("load").upper())
    )


@dataclass
class ScanReport:
    """What a scan changed. ``errors`` and ``skipped`` hold relative file names."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def walk_images(data_dir: Path, exclude: Path | None = None) -> tuple[list[str], list[str]]:
    """(image file names, skipped file names) under ``data_dir``, relative, '/'-separated, sorted.

    Hidden entries (a name starting with '.') and ``exclude`` (the work folder) are left out
    silently; files without an image suffix or with a name that is not valid UTF-8 are skipped.
    """
    images: list[str] = []
    skipped: list[str] = []
    exclude_resolved = exclude.resolve() if exclude is not None else None
    for root, dirs, files in os.walk(data_dir):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (root_path / d).resolve() != exclude_resolved)
        for name in sorted(files):
            if name.startswith("."):
                continue
            rel = (root_path / name).relative_to(data_dir).as_posix()
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                skipped.append(rel.encode("utf-8", "backslashreplace").decode("utf-8"))
                continue
            (images if Path(name).suffix.lower() in IMAGE_SUFFIXES else skipped).append(rel)
    return images, skipped


def scan(
    conn: Connection,
    data_dir: Path,
    exclude: Path | None = None,
    progress: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ScanReport:
    """Bring the ``image`` table in line with the files in ``data_dir``.

    Unchanged files (same size and mtime) are not read again; files that disappeared are
    marked ``missing`` (their annotations are kept); a symlink to a file outside ``data_dir``
    is recorded with an error and never read.
    """
    report = ScanReport()
    names, report.skipped = walk_images(data_dir, exclude)
    known = scanned_files(conn)
    to_probe: list[tuple[str, os.stat_result]] = []
    for name in names:
        try:
            st = (data_dir / name).stat()
        except OSError:
            continue
        row = known.get(name)
        if row is None or row["missing"] or row["file_size"] != st.st_size or row["file_mtime_ns"] != st.st_mtime_ns:
            to_probe.append((name, st))
    probes: list[tuple[str, os.stat_result, ImageProbe]] = []
    if to_probe:
        from tqdm import tqdm

        for name, st in tqdm(to_probe, desc="reading images", unit="img", disable=not progress or len(to_probe) < 20):
            try:
                real = resolve_inside(data_dir, name)
                probe = (
                    probe_image(real, max_pixels) if real is not None else ImageProbe(None, error="not a regular file")
                )
            except OutsideDataFolder:
                probe = ImageProbe(None, error="a link to a file outside the data folder: not read")
            probes.append((name, st, probe))
    present = set(names)
    gone = [row["id"] for name, row in known.items() if not row["missing"] and name not in present]
    if probes or gone:
        read = [
            ImageFile(name, st.st_size, st.st_mtime_ns, p.sha256, p.width, p.height, p.orientation, p.format, p.error)
            for name, st, p in probes
        ]
        record_scan(conn, read, known, gone)
        report.updated = sum(f.file_name in known for f in read)
        report.added = len(read) - report.updated
        report.removed = len(gone)
    report.errors = image_errors(conn)
    return report


def image_status(row: Row) -> str:
    """``error`` (unusable file), ``done`` (marked so), ``in_progress`` (has masks) or ``not_started``."""
    if row["error"]:
        return "error"
    if row["done"]:
        return "done"
    if row["num_annotations"] or row["num_proposed"]:
        return "in_progress"
    return "not_started"


class Catalog:
    """The data folder plus its ``image`` table, rescanned at most every ``interval`` seconds."""

    def __init__(
        self, data_dir: Path, database: str, workdir: Path, interval: float = 2.0, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        self.data_dir = data_dir
        self.database = database
        self.workdir = workdir
        self.interval = interval
        self.max_pixels = max_pixels
        self._lock = threading.Lock()
        self._last_scan = -float("inf")
        self.last_report: ScanReport | None = None

    def scan(self, progress: bool = False) -> ScanReport:
        """Scan now (one scan at a time; a concurrent caller waits and reuses the result)."""
        started = time.monotonic()
        with self._lock:
            if self._last_scan >= started and self.last_report is not None:
                return self.last_report
            conn = open_database(self.database)
            try:
                report = scan(conn, self.data_dir, exclude=self.workdir, progress=progress, max_pixels=self.max_pixels)
            finally:
                conn.close()
            self._last_scan = time.monotonic()
            self.last_report = report
        return report

    def maybe_rescan(self) -> ScanReport | None:
        """Scan if the last scan is older than ``interval`` seconds; else do nothing."""
        if time.monotonic() - self._last_scan < self.interval:
            return None
        return self.scan()


_ANIMATED: dict[str, bool] = {}
_ANIMATED_LOCK = threading.Lock()


def is_animated(path: Path, sha256: str, fmt: str | None) -> bool:
    """Whether an image file holds more than one frame (GIF, APNG, WebP); cached by content hash."""
    if fmt not in ANIMATED_FORMATS:
        return False
    with _ANIMATED_LOCK:
        if sha256 in _ANIMATED:
            return _ANIMATED[sha256]
    try:
        with Image.open(path) as img:
            animated = bool(getattr(img, "is_animated", False))
    except (OSError, ValueError, SyntaxError, EOFError):
        animated = False
    with _ANIMATED_LOCK:
        _ANIMATED[sha256] = animated
    return animated
