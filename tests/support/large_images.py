"""Large test pictures made procedurally with libvips (streamed to disk, never whole in memory)."""

from __future__ import annotations

from pathlib import Path


def textured(width: int, height: int, grain: float = 6.0) -> object:
    """A ``height x width x 3`` uint8 libvips image: smooth coloured noise with fine grain, so that
    tiles differ from each other and JPEG files stay a reasonable size (~1 byte a pixel at Q 85)."""
    import pyvips

    coarse_w, coarse_h = max(2, width // 64), max(2, height // 64)
    bands = [pyvips.Image.gaussnoise(coarse_w, coarse_h, sigma=40, mean=128) for _ in range(3)]
    smooth = bands[0].bandjoin(bands[1:]).resize(width / coarse_w, vscale=height / coarse_h, kernel="linear")
    grain = pyvips.Image.gaussnoise(width, height, sigma=grain, mean=0)
    image = (
        smooth.crop(0, 0, min(width, smooth.width), min(height, smooth.height)).embed(
            0, 0, width, height, extend="copy"
        )
        + grain
    ).cast("uchar")
    return image.copy(interpretation="srgb")


def write_large_jpeg(path: Path, width: int, height: int, quality: int = 85, grain: float = 6.0) -> Path:
    """A procedural JPEG of ``width x height`` (see ``textured``) at ``path``."""
    textured(width, height, grain).jpegsave(str(path), Q=quality)  # type: ignore[attr-defined]
    return path


def write_large_tiff(path: Path, width: int, height: int, microns_per_pixel: float) -> Path:
    """A tiled BigTIFF whose resolution tags say ``microns_per_pixel`` (ResolutionUnit = cm)."""
    per_cm = 1e4 / microns_per_pixel
    textured(width, height).tiffsave(  # type: ignore[attr-defined]
        str(path),
        tile=True,
        tile_width=256,
        tile_height=256,
        bigtiff=True,
        compression="jpeg",
        Q=85,
        xres=per_cm / 10,
        yres=per_cm / 10,
        resunit="cm",  # libvips takes pixels per millimetre
    )
    return path
