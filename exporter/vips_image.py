"""Pixels of large images through libvips, never decoding the whole image into memory.

Frames: the *image* frame is the upright original (EXIF orientation applied), W x H pixels, as
the catalogue records it. Every array returned here is HxWx3 uint8 RGB as the page shows it
(``as_shown``: 16-bit scaled to 8, transparency over black, greyscale repeated).

* ``upright_size``: (W, H) from the file's header only.
* ``thumbnail_rgb``: the whole image scaled to a given size by libvips' shrink-on-load (a JPEG is
  decoded at 1/2..1/8 scale by libjpeg, a pyramidal TIFF reads its nearest page).
* ``region_rgb``: the pixels of one region (a tile), read as a region: a tiled or striped TIFF
  reads only the tiles or strips under it; a JPEG or PNG is decoded top to bottom down to the
  region's last row, one strip in memory at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from maskloop.errors import UserError

#: Loaders that read a region without decoding the rows above it (tiles and strips).
_RANDOM_ACCESS_LOADERS = frozenset({"tiffload", "tiffload_source"})


def vips() -> Any:
    """pyvips, with its operation cache off: each read uses an image once, and the cache would keep
    up to 100 MB of decoded pixels per process."""
    import pyvips

    pyvips.cache_set_max(0)
    return pyvips


def as_shown(image: Any) -> Any:
    """A libvips image as the page shows it: 8-bit sRGB, transparency over black (as
    ``maskloop.exporter.embedding.rgb_as_shown`` does with Pillow)."""
    if image.hasalpha():
        image = image.flatten(background=[0, 0, 0])
    if image.format in ("ushort", "short"):
        image = (image / 257.0 + 0.5).cast("uchar")
    elif image.format != "uchar":
        image = image.cast("uchar")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    elif image.bands > 3:
        image = image.extract_band(0, n=3)
    return image


def to_array(image: Any) -> npt.NDArray[np.uint8]:
    """A 3-band uchar libvips image -> HxWx3 uint8 (computed now; a writable copy)."""
    data = image.write_to_memory()
    return np.frombuffer(data, np.uint8).reshape(image.height, image.width, 3).copy()


def _orientation(header: Any) -> int:
    orientation = int(header.get("orientation")) if header.get_typeof("orientation") else 1
    return orientation if orientation in range(1, 9) else 1


def upright_size(path: str | Path) -> tuple[int, int] | None:
    """(W, H) of the upright image from its header, or None when libvips cannot read the file."""
    pyvips = vips()
    try:
        header = pyvips.Image.new_from_file(str(path))
        width, height = header.width, header.height
        rotated = _orientation(header) in (5, 6, 7, 8)
    except Exception:  # noqa: BLE001 - any failure means "not readable this way"
        return None
    return (height, width) if rotated else (width, height)


def thumbnail_rgb(path: str | Path, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The upright image scaled to exactly ``width`` x ``height`` by shrink-on-load: HxWx3 uint8.

    Raises:
      UserError: libvips cannot read the image.
    """
    pyvips = vips()
    try:
        return to_array(as_shown(pyvips.Image.thumbnail(str(path), width, height=height, size="force")))
    except pyvips.Error as exc:
        raise UserError(f"{Path(path).name}: unreadable image ({str(exc).splitlines()[0]})") from None


def region_rgb(path: str | Path, region: tuple[int, int, int, int]) -> npt.NDArray[np.uint8]:
    """The pixels of ``region`` (x0, y0, x1, y1 in the image frame, half-open): (y1-y0)x(x1-x0)x3 uint8.

    Raises:
      UserError: libvips cannot read the image, or the region is not inside it.
    """
    pyvips = vips()
    name = Path(path).name
    try:
        header = pyvips.Image.new_from_file(str(path))
        loader = str(header.get("vips-loader"))
        orientation = _orientation(header)
        if orientation != 1:  # rotating needs random access: libvips decodes to a temporary file
            image = header.autorot()
        elif loader in _RANDOM_ACCESS_LOADERS:
            image = header
        else:  # decode top to bottom, keeping a strip: memory stays small, time grows with y1
            image = pyvips.Image.new_from_file(str(path), access="sequential")
        x0, y0, x1, y1 = region
        if not (0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height):
            raise UserError(f"region {x0},{y0},{x1},{y1} is not inside the {image.width}x{image.height} image {name}")
        return to_array(as_shown(image.crop(x0, y0, x1 - x0, y1 - y0)))
    except pyvips.Error as exc:
        raise UserError(f"{name}: unreadable image ({str(exc).splitlines()[0]})") from None
