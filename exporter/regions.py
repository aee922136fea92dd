"""Pixels of a region of an image (a tile or a crop), for embedding it.

An image of at most ``WHOLE_DECODE_PIXELS`` is decoded once and kept in a small LRU
(``DECODED_KEPT`` images), so that the tiles a person clicks through one after another do not
decode it again: a 9000x6000 JPEG takes ~1.5 s to decode on a 2-core CPU and 162 MB to hold.
TIFFs that Pillow cannot read (BigTIFF, tiled or compressed layouts it lacks) are then read with
``tifffile`` when it is installed. A larger image (a 20,000² JPEG would hold 1.2 GB) is never
decoded whole: each region is read as a region by libvips (``vips_image.region_rgb``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from maskloop.errors import UserError
from maskloop.exporter.image_file import load_image_rgb
from maskloop.exporter.kept_arrays import KeptArrays
from maskloop.exporter.vips_image import region_rgb, upright_size
from maskloop.tiles import Box

#: Decoded images kept (a 9000x6000 RGB image is 162 MB).
DECODED_KEPT = 1
#: Images of more pixels than this (Pillow's decompression-bomb limit, 89.5 MP: 268 MB decoded)
#: are read region by region, never decoded whole.
WHOLE_DECODE_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485

_decoded: KeptArrays[tuple[str, int, int]] = KeptArrays(DECODED_KEPT)


def _read_tiff(path: Path) -> npt.NDArray[np.uint8]:
    """A TIFF as HxWx3 uint8 through tifffile (greyscale repeated, 16-bit scaled, alpha dropped)."""
    try:
        import tifffile
    except ImportError:
        raise UserError(f"{path.name}: Pillow cannot read this TIFF and tifffile is not installed") from None
    array = np.asarray(tifffile.imread(path))
    if array.dtype == np.uint16:
        array = (array.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def decoded_image(path: str | Path) -> npt.NDArray[np.uint8]:
    """The whole image, HxWx3 uint8 RGB, EXIF-upright (image frame), from the LRU or decoded now.

    Raises:
      UserError: the file cannot be read as an image.
    """
    path = Path(path)
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)

    def decode() -> npt.NDArray[np.uint8]:
        try:
            return np.asarray(load_image_rgb(path), np.uint8)
        except UserError:
            if path.suffix.lower() not in (".tif", ".tiff"):
                raise
            return _read_tiff(path)

    return _decoded.get(key, decode)


def read_region(path: str | Path, region: Box) -> npt.NDArray[np.uint8]:
    """The pixels of ``region`` (x0, y0, x1, y1 image pixels, half-open): (y1-y0)x(x1-x0)x3 uint8, a copy.

    Raises:
      UserError: unreadable image, or a region outside it.
    """
    size = upright_size(path)
    if size is not None and size[0] * size[1] > WHOLE_DECODE_PIXELS:
        return region_rgb(path, region)
    image = decoded_image(path)
    x0, y0, x1, y1 = region
    h, w = image.shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise UserError(f"region {x0},{y0},{x1},{y1} is not inside the {w}x{h} image {Path(path).name}")
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def forget_decoded() -> None:
    """Drop the decoded images kept (tests; memory pressure)."""
    _decoded.clear()
