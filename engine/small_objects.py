"""Small objects on a large picture, with exact ground truth: the set tiled embeddings are measured on.

A textured background (scikit-image's ``grass`` photograph, tiled with flips and tinted by a
smooth colour field) of e.g. 9000x6000 pixels, and blob-shaped objects (engine/texture_domain's
blobs) filled with a tinted, shaded patch of another texture, pasted at their own size: several
sizes, at random places and on purpose across tile edges and the corners where four tiles meet
(``maskloop.tiles``). Masks are rasterised first and the pixels composed from them, so they are
the exact truth. Used by ``bench/bench_large_images.py`` and the tiling tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from maskloop.engine.texture_domain import _blob, _texture
from maskloop.tiles import Box, Tiling, tile_grid


@dataclass(frozen=True)
class PastedObject:
    """One object: ``box`` (x0, y0, x1, y1 image pixels) and ``mask`` (y1-y0, x1-x0) bool in the box's frame.
    ``on_border``: placed across a tile edge (its box is not inside the tile its centre is nearest)."""

    box: Box
    mask: npt.NDArray[np.bool_]
    on_border: bool

    @property
    def size(self) -> int:
        """The long side of the object's box (pixels)."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    def full(self, hw: tuple[int, int]) -> npt.NDArray[np.bool_]:
        """The mask at the full image size (H, W) bool."""
        out = np.zeros(hw, bool)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.mask
        return out


def _background(rng: np.random.Generator, width: int, height: int) -> npt.NDArray[np.uint8]:
    """HxWx3 uint8: grass tiled with random flips, tinted green-brown by a smooth random field."""
    grass = _texture("grass")
    grass = (grass - grass.mean()) / (grass.std() + 1e-6) * 30 + 110
    side = grass.shape[0]
    grey = np.empty((height, width), np.float32)
    for y in range(0, height, side):
        for x in range(0, width, side):
            patch = grass[:: rng.choice([-1, 1]), :: rng.choice([-1, 1])]
            grey[y : y + side, x : x + side] = patch[: height - y, : width - x]
    field = cv2.resize(
        rng.uniform(0.8, 1.2, (height // 750 + 2, width // 750 + 2, 3)).astype(np.float32), (width, height)
    )
    tint = np.array([0.75, 1.0, 0.55], np.float32)
    background: npt.NDArray[np.uint8] = np.clip(grey[..., None] * tint * field, 0, 255).astype(np.uint8)
    return background


def _paint(rng: np.random.Generator, image: npt.NDArray[np.uint8], obj: PastedObject) -> None:
    """Fill the object's pixels with a tinted, shaded patch of a texture (in place)."""
    x0, y0, x1, y1 = obj.box
    h, w = y1 - y0, x1 - x0
    texture = _texture(str(rng.choice(["brick", "gravel"])))
    patch = cv2.resize(texture, (w, h)) if min(texture.shape) < max(h, w) else texture[:h, :w]
    patch = (patch - patch.mean()) / (patch.std() + 1e-6) * 18
    colour = rng.uniform(60, 230, 3).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    shade = 1.0 - 0.25 * ((xx / max(w - 1, 1)) + (yy / max(h - 1, 1))) / 2
    pixels = np.clip((colour + patch[..., None]) * shade[..., None], 0, 255).astype(np.uint8)
    region = image[y0:y1, x0:x1]
    region[obj.mask] = pixels[obj.mask]


def _place(
    rng: np.random.Generator, centre: tuple[float, float], size: int, width: int, height: int, on_border: bool
) -> PastedObject | None:
    radius = size / 2
    pad = int(radius * 1.4) + 2
    cx, cy = centre
    x0, y0 = int(cx) - pad, int(cy) - pad
    x1, y1 = x0 + 2 * pad, y0 + 2 * pad
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        return None
    local = _blob(rng, (cx - x0, cy - y0), radius, (y1 - y0, x1 - x0))
    ys, xs = np.nonzero(local)
    if len(xs) < 50:
        return None
    tight = (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1)
    mask = local[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return PastedObject(tight, mask, on_border)


def make_scene(
    seed: int = 0,
    width: int = 9000,
    height: int = 6000,
    sizes: tuple[int, ...] = (40, 80, 160, 240),
    per_size: int = 3,
    tiling: Tiling | None = None,
) -> tuple[npt.NDArray[np.uint8], list[PastedObject]]:
    """(HxWx3 uint8 RGB, objects): per size, ``per_size`` objects at random places and as many
    across tile edges (half on an edge between two tiles, half on a corner where four meet)."""
    rng = np.random.default_rng(seed)
    tiling = tiling or Tiling()
    image = _background(rng, width, height)
    edges_x = sorted({t[2] for t in tile_grid(width, height, tiling) if t[2] < width})
    edges_y = sorted({t[3] for t in tile_grid(width, height, tiling) if t[3] < height})
    objects: list[PastedObject] = []
    taken: list[Box] = []
    for size in sizes:
        wanted = [False] * per_size + [True] * per_size
        for k, on_border in enumerate(wanted):
            for _ in range(100):
                if on_border:
                    ex, ey = float(rng.choice(edges_x)), float(rng.choice(edges_y))
                    corner = k % 2 == 0
                    centre = (ex, ey if corner else rng.uniform(size, height - size))
                else:
                    centre = (rng.uniform(size, width - size), rng.uniform(size, height - size))
                obj = _place(rng, centre, size, width, height, on_border)
                if obj is None or any(_near(obj.box, other, 40) for other in taken):
                    continue
                objects.append(obj)
                taken.append(obj.box)
                break
    for obj in objects:
        _paint(rng, image, obj)
    return image, objects


def place_scene(
    seed: int, width: int, height: int, placements: list[tuple[tuple[float, float], int, bool]]
) -> tuple[npt.NDArray[np.uint8], list[PastedObject]]:
    """(HxWx3 uint8 RGB, objects) with one object per placement ``((cx, cy), size, on_border)``:
    centre in image pixels, long side ~``size``; for tests that put objects on given tile edges."""
    rng = np.random.default_rng(seed)
    image = _background(rng, width, height)
    objects = []
    for centre, size, on_border in placements:
        obj = _place(rng, centre, size, width, height, on_border)
        if obj is None:
            raise ValueError(f"an object of {size} px at {centre} does not fit in the {width}x{height} image")
        objects.append(obj)
    for obj in objects:
        _paint(rng, image, obj)
    return image, objects


def _near(a: Box, b: Box, gap: int) -> bool:
    return a[0] - gap < b[2] and b[0] - gap < a[2] and a[1] - gap < b[3] and b[1] - gap < a[3]
