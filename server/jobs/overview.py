"""The overview of a large image: one shrink-on-load downscale that serves both the page's first
view (the tile pyramid's coarse levels, ``jobs/pyramid.py``) and the whole-image embedding.

Frame: the upright image scaled by ``2 ** -k`` to ``ceil(W / 2**k) x ceil(H / 2**k)``, the
smallest ``k`` whose long side is at most ``OVERVIEW_SIDE`` (2048): the pyramid's finest coarse
level. For an image larger than that its long side is 1025..2048 px, so it holds every pixel
SAM's 1024 input sees. libvips makes it without decoding the image whole (a 20,000² JPEG is
decoded at 1/8 scale: ~1 s of entropy decoding and ~15 MB, where Pillow needs 1.2 GB).

The last ``KEPT`` overviews stay in memory (at most 12.6 MB each), and two threads that ask for
the same one at once wait for one decode: opening an image asks for the pyramid and the embedding
together, and each used to decode it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from maskloop.exporter.kept_arrays import KeptArrays
from maskloop.exporter.vips_image import thumbnail_rgb, upright_size

#: The overview's long side is at most this (the pyramid's ``COARSE_SIDE``).
OVERVIEW_SIDE = 2048
#: Overviews kept in memory.
KEPT = 2

_kept: KeptArrays[tuple[str, int, int, int, int]] = KeptArrays(KEPT)


def overview_size(width: int, height: int, side: int = OVERVIEW_SIDE) -> tuple[int, int]:
    """(w, h) of the overview of a W x H upright image: halved (rounding up) until its long side <= ``side``."""
    k = 0
    while max(-(-width // 2**k), -(-height // 2**k)) > side:
        k += 1
    return -(-width // 2**k), -(-height // 2**k)


def has_overview(width: int, height: int) -> bool:
    """Whether the image is larger than its overview (long side > ``OVERVIEW_SIDE``)."""
    return max(width, height) > OVERVIEW_SIDE


def overview(path: Path, width: int, height: int) -> npt.NDArray[np.uint8]:
    """The overview of the W x H upright image at ``path``: HxWx3 uint8 of ``overview_size``, read-only.

    Raises:
      UserError: libvips cannot read the image.
    """
    path = path.resolve()  # the pyramid and the embedding may name the file differently
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size, width, height)
    return _kept.get(key, lambda: thumbnail_rgb(path, *overview_size(width, height)))


def embedding_pixels(path: Path) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """What the whole-image embedding is computed from, and the upright image's (H, W).

    A large image (long side > ``OVERVIEW_SIDE``) gives its overview, never decoded whole; any
    other image (or one libvips cannot read) is decoded whole by Pillow, as before.

    Raises:
      UserError: the file cannot be read as an image.
    """
    from maskloop.exporter.image_file import load_image_rgb

    size = upright_size(path)
    if size is not None and has_overview(*size):
        return overview(path, *size), (size[1], size[0])
    pixels = load_image_rgb(path)
    return pixels, (pixels.shape[0], pixels.shape[1])


def model_input(pixels: npt.NDArray[np.uint8], hw: tuple[int, int], input_size: int) -> npt.NDArray[np.uint8]:
    """``pixels`` of an (H, W) image resized to SAM's input frame of that image: the long side
    ``input_size``, the short side as ``ResizeLongestSide.get_preprocess_shape(H, W)`` rounds it
    (from the image's own size, not the overview's, so that prompts and masks line up exactly).
    An array already that size (a small image) is returned as it is; the embedder resizes it."""
    from PIL import Image

    from maskloop.prompt import preprocess_shape

    if pixels.shape[:2] == hw:
        return pixels
    new_h, new_w = preprocess_shape(hw[0], hw[1], input_size)
    # bilinear with Pillow's antialiasing: what ResizeLongestSide itself does to a whole image
    return np.asarray(Image.fromarray(pixels).resize((new_w, new_h), Image.Resampling.BILINEAR))


def forget() -> None:
    """Drop the overviews kept (tests)."""
    _kept.clear()
