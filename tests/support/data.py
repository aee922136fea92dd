"""Sample data builders: data folders of real and broken image files, masks, lookups."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_jpeg(path: Path, width: int = 64, height: int = 48, orientation: int | None = None, seed: int = 0) -> Path:
    """A small noisy RGB JPEG (optionally with an EXIF orientation tag) at ``path``."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    img.save(path, format="JPEG", quality=90, exif=exif.tobytes())
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming ``width`` x ``height`` with almost no data: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


#: file name -> expected listing status, for the folder built by ``make_data_dir``
GOOD_FILES = ("a.jpg", "b.png", "rotated.jpg", "sub/café photo ünï.jpg")
BAD_FILES = ("bomb.png", "empty.png", "notes.jpg", "truncated.jpg")


def make_data_dir(root: Path, bad: bool = True) -> Path:
    """A data folder: good images (one EXIF-rotated, one in a sub-folder with a unicode, spaced
    name) and, with ``bad``, a decompression bomb, a 0-byte file, a text file named .jpg, a
    truncated JPEG, a non-image file and a file whose name is not UTF-8."""
    root.mkdir(parents=True, exist_ok=True)
    write_jpeg(root / "a.jpg", 64, 48, seed=1)
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 255, (40, 30), dtype=np.uint8)).save(root / "b.png")
    write_jpeg(root / "rotated.jpg", 64, 48, orientation=6, seed=3)  # shown as 48 x 64
    (root / "sub").mkdir(exist_ok=True)
    write_jpeg(root / "sub" / "café photo ünï.jpg", 32, 32, seed=4)
    if bad:
        (root / "bomb.png").write_bytes(png_header_only(30000, 30000))
        (root / "empty.png").write_bytes(b"")
        (root / "notes.jpg").write_text("this is not a picture\n")
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(5).integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(buffer, "JPEG")
        (root / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        (root / "README.txt").write_text("not an image\n")
        with open(bytes(root) + b"/bad-name-\xff.jpg", "wb") as f:
            f.write(b"")
    return root


def image_ids(client) -> dict[str, int]:
    return {img["file_name"]: img["id"] for img in client.get("/api/images").get_json()}


def square_mask(height: int, width: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1, x0:x1] = 1
    return mask
