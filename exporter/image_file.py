"""Image files read as the page shows them: upright RGB uint8 (without importing PyTorch, so a
server that only reads pictures and runs onnxruntime never loads it).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maskloop.errors import UserError

#: Pillow modes of 16-bit greyscale (PNG, TIFF); ``I`` is how older Pillow opens a 16-bit PNG.
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})


def check_rgb(image: np.ndarray) -> None:
    """Raise ValueError unless ``image`` is an HxWx3 uint8 RGB array (what the encoders take)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")


def rgb_as_shown(img: Image.Image) -> np.ndarray:
    """An opened image (frame 0 of an animation) as a browser shows it, as RGB.

    Pillow's ``convert("RGB")`` clips 16-bit greyscale at 255 (a 16-bit photo turns almost
    white), where browsers scale 0..65535 to 0..255; and it shows what transparent pixels hide,
    where the page shows its near-black stage through them. Both are done here as the page does.

    Returns:
      (np.ndarray) HxWx3 uint8.
    """
    if img.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(img).astype(np.float32)
        grey = np.clip(grey / 257.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "F":  # 32-bit float TIFF: values are taken as 0..255
        grey = np.clip(np.asarray(img) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"))
        alpha = rgba[:, :, 3:4].astype(np.uint16)
        return ((rgba[:, :, :3] * alpha + 127) // 255).astype(np.uint8)  # over black
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def load_image_rgb(path: str | Path, draft: int | None = None) -> np.ndarray:
    """Read an image file as an upright RGB array.

    Arguments:
      draft: a JPEG may be decoded at 1/2 to 1/8 scale as long as both sides stay at least this
        (Pillow's ``draft``; thumbnails); other formats are read whole.
    Returns:
      (np.ndarray) HxWx3 uint8, EXIF orientation applied, frame 0 of an animation, 16-bit
      scaled to 8 and transparency over black (what the page shows; ``rgb_as_shown``).
    Raises:
      UserError: empty, unreadable, not an image, or a decompression bomb.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UserError(f"{path.name}: empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if draft:
                    img.draft("RGB", (draft, draft))
                ImageOps.exif_transpose(img, in_place=True)  # no copy of an upright image
                return rgb_as_shown(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"{path.name}: image too large (more than {Image.MAX_IMAGE_PIXELS} pixels)") from None
    except UnidentifiedImageError:
        raise UserError(f"{path.name}: not an image file Pillow can read") from None
    except OSError as exc:
        raise UserError(f"{path.name}: unreadable image ({exc})") from None
