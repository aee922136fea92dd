"""Small previews of a folder's images for the image list (``GET /api/images/<id>/thumbnail``).

A thumbnail is a JPEG whose long side is ``SIZE`` pixels (smaller images are not enlarged),
upright (EXIF orientation applied) and drawn as the page shows the image (16-bit greys scaled,
transparency over black). It is made once per image *content* and kept in the work folder,
``WORKDIR/thumbnails/<image sha256>-<SIZE>.jpg``: a changed file gets a new one, and a folder's
thumbnails go with its work folder.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from maskloop.errors import UserError

#: The long side of a thumbnail, in pixels.
SIZE = 128
QUALITY = 82
#: Above this many pixels an image's thumbnail is made by libvips, without decoding it whole.
LARGE_PIXELS = 4096 * 4096


def thumbnail_path(root: Path, sha256: str, size: int = SIZE) -> Path:
    """Where the thumbnail of the image whose content has ``sha256`` is kept under ``root``."""
    return root / f"{sha256}-{size}.jpg"


def ensure_thumbnail(image: Path, sha256: str, root: Path, size: int = SIZE) -> Path:
    """The thumbnail of ``image`` (made now if missing; written atomically, so two requests at
    once are harmless).

    Raises:
      UserError: the file is unreadable, not an image, or a decompression bomb.
    """
    out = thumbnail_path(root, sha256, size)
    if out.is_file():
        return out
    from maskloop.exporter.image_file import load_image_rgb

    small = _vips_thumbnail(image, size) or Image.fromarray(load_image_rgb(image, draft=size))
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=QUALITY, optimize=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.{id(buffer)}.tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, out)
    return out


def _vips_thumbnail(image: Path, size: int) -> Image.Image | None:
    """A large image's thumbnail by libvips (shrink-on-load: a JPEG decoded at 1/8 scale, a
    pyramidal TIFF's small page, other formats by strips), or None for an image Pillow reads
    cheaply (at most ``LARGE_PIXELS``, or a JPEG within Pillow's bomb limit, which draft shrinks)."""
    import numpy as np
    import pyvips

    try:
        header = pyvips.Image.new_from_file(str(image))
    except pyvips.Error:
        return None  # Pillow says what is wrong
    pixels = header.width * header.height
    is_jpeg = str(header.get("vips-loader")) == "jpegload"
    if pixels <= LARGE_PIXELS or (is_jpeg and pixels <= (Image.MAX_IMAGE_PIXELS or 0)):
        return None
    from maskloop.exporter.vips_image import as_shown

    try:
        small = as_shown(pyvips.Image.thumbnail(str(image), size, height=size))
    except pyvips.Error as exc:
        raise UserError(f"{image.name}: unreadable image ({str(exc).splitlines()[0]})") from None
    return Image.fromarray(
        np.ndarray(buffer=small.write_to_memory(), dtype=np.uint8, shape=(small.height, small.width, 3))
    )
