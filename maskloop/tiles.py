"""Tiles of a large image and the routing of a prompt to the region whose embedding answers it.

SAM sees every image at ``input_size`` (1024) on its long side, so a small object in a large
picture is a few pixels to the model. An image whose long side is more than ``threshold`` is
instead covered by a grid of overlapping tiles of ``input_size`` x ``input_size`` *image* pixels,
each embedded at full resolution when a prompt first needs it.

Frames (x, y; boxes ``(x0, y0, x1, y1)`` half-open, integers for regions):

- **image**: pixels of the original (EXIF-upright) image, ``W x H``.
- **region** (a tile or a crop): pixels of the region ``(x0, y0, x1, y1)`` of the image;
  ``xy_region = xy_image - (x0, y0)``. The region is embedded as an image of its own, so SAM's
  usual ``image -> model`` scaling (``maskloop.prompt``) applies to it with ``image_hw`` = the
  region's ``(y1 - y0, x1 - x0)``; a tile is at most ``input_size`` on a side, so its model frame
  is its own pixels (scale 1).
- **model**: what the decoder takes; ``maskloop.prompt.xy_image_to_model`` of the region frame.

Overlap: consecutive tiles share at least ``overlap`` pixels along each axis, so every object
whose bounding box is at most ``overlap`` x ``overlap`` (256 x 256 by default) lies wholly inside
some tile. Routing then picks, among the tiles that hold the prompt (its points and box together),
the one where the prompt is farthest from a tile edge that cuts the image (an edge on the image's
own border cuts nothing). A prompt that no tile holds (a box wider than a tile) is answered by a
crop around it, or by the whole image where a crop would be as large (the higher resolution wins).

The numbers (``tile``, ``overlap``, ``threshold``) are sent to the page in ``/api/model``'s
``tiling`` so that Python and the page's ``tile-route.js`` route alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

#: A region of the image: (x0, y0, x1, y1) image pixels, half-open.
Box = tuple[int, int, int, int]
RouteKind = Literal["image", "tile", "crop"]


class TilingJson(TypedDict):
    """What ``/api/model`` sends as ``tiling``."""

    tile: int
    overlap: int
    threshold: int
    crop_padding: float


@dataclass(frozen=True)
class Tiling:
    """How large images are tiled.

    Arguments:
      tile: a tile's side in image pixels (the model's input size: a tile is embedded unscaled).
      overlap: the least number of pixels consecutive tiles share along an axis (the largest
        object side guaranteed to lie wholly inside one tile).
      threshold: images whose long side is more than this are tiled (default 2 x ``tile``).
      crop_padding: the fraction of a prompt's size added on each side of a crop around it.
    """

    tile: int = 1024
    overlap: int = 256
    threshold: int = 2048
    crop_padding: float = 0.125

    @classmethod
    def for_model(cls, input_size: int, threshold: int | None = None) -> Tiling:
        """The tiling of a model of ``input_size``: tiles of that size, a quarter overlap."""
        return cls(tile=input_size, overlap=input_size // 4, threshold=threshold or 2 * input_size)

    def to_json(self) -> TilingJson:
        return TilingJson(
            tile=self.tile, overlap=self.overlap, threshold=self.threshold, crop_padding=self.crop_padding
        )

    def is_tiled(self, width: int, height: int) -> bool:
        """Whether an image of ``width x height`` is answered by tiles."""
        return max(width, height) > self.threshold


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where tiles start along an axis of ``length`` pixels: evenly spread, the first at 0 and the
    last ending at ``length``, consecutive ones sharing at least ``overlap`` pixels."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    return [math.floor(i * (length - tile) / (count - 1) + 0.5) for i in range(count)]  # JS's Math.round


def tile_grid(width: int, height: int, tiling: Tiling) -> list[Box]:
    """Every tile of an image of ``width x height``, row by row (image pixels, half-open)."""
    xs = tile_starts(width, tiling.tile, tiling.overlap)
    ys = tile_starts(height, tiling.tile, tiling.overlap)
    return [(x, y, min(x + tiling.tile, width), min(y + tiling.tile, height)) for y in ys for x in xs]


def prompt_bounds(points_xy: Sequence[Sequence[float]], box_xyxy: Sequence[float] | None) -> tuple[float, ...]:
    """(x0, y0, x1, y1) image pixels around a prompt's points and box together."""
    xs = [float(p[0]) for p in points_xy]
    ys = [float(p[1]) for p in points_xy]
    if box_xyxy is not None:
        xs += [float(box_xyxy[0]), float(box_xyxy[2])]
        ys += [float(box_xyxy[1]), float(box_xyxy[3])]
    if not xs:
        raise ValueError("a prompt needs at least one point or a box")
    return min(xs), min(ys), max(xs), max(ys)


def margin(bounds: Sequence[float], tile: Box, width: int, height: int) -> float:
    """How far ``bounds`` lies inside ``tile`` from its nearest edge that cuts the image
    (negative when it sticks out; an edge on the image border does not count)."""
    x0, y0, x1, y1 = bounds
    tx0, ty0, tx1, ty1 = tile
    sides = [
        (x0 - tx0, tx0 > 0),
        (y0 - ty0, ty0 > 0),
        (tx1 - x1, tx1 < width),
        (ty1 - y1, ty1 < height),
    ]
    cuts = [d for d, cut in sides if cut]
    inside = min(d for d, _ in sides) >= 0
    if not inside:
        return min(d for d, _ in sides)
    return min(cuts) if cuts else math.inf


@dataclass(frozen=True)
class Route:
    """Where a prompt is decoded: ``kind`` and its ``region`` (image pixels; the whole image for ``image``)."""

    kind: RouteKind
    region: Box

    @property
    def offset(self) -> tuple[int, int]:
        """(x0, y0): subtract from image-frame coordinates to get region-frame ones."""
        return self.region[0], self.region[1]

    @property
    def hw(self) -> tuple[int, int]:
        """(H, W) of the region: its ``image_hw`` once embedded."""
        x0, y0, x1, y1 = self.region
        return y1 - y0, x1 - x0


def route_prompt(
    points_xy: Sequence[Sequence[float]], box_xyxy: Sequence[float] | None, width: int, height: int, tiling: Tiling
) -> Route:
    """The region whose embedding answers a prompt (points (N,2) and box (4,) in image pixels).

    A small image: the whole image. A large one: the tile holding the prompt with the most margin;
    when none holds it, a crop of the prompt's bounds padded by ``crop_padding`` (square where the
    image allows, so it is scaled alike on both axes), or the whole image if the crop would be as large.
    """
    whole = Route("image", (0, 0, width, height))
    if not tiling.is_tiled(width, height):
        return whole
    bounds = prompt_bounds(points_xy, box_xyxy)
    best = max(tile_grid(width, height, tiling), key=lambda t: margin(bounds, t, width, height))
    if margin(bounds, best, width, height) >= 0:
        return Route("tile", best)
    crop = crop_around(bounds, width, height, tiling.crop_padding)
    if max(crop[2] - crop[0], crop[3] - crop[1]) >= max(width, height):
        return whole
    return Route("crop", crop)


def crop_around(bounds: Sequence[float], width: int, height: int, padding: float) -> Box:
    """A square (where the image allows) around ``bounds`` padded by ``padding`` x its long side."""
    x0, y0, x1, y1 = bounds
    side = max(x1 - x0, y1 - y0) * (1 + 2 * padding)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx0, rx1 = _fit(cx - side / 2, side, width)
    ry0, ry1 = _fit(cy - side / 2, side, height)
    return rx0, ry0, rx1, ry1


def _fit(a: float, size: float, length: int) -> tuple[int, int]:
    """The interval [a, a + size) shifted inside [0, length) (and cut to it when longer), as integers."""
    n = min(length, math.ceil(size))
    start = min(max(0, math.floor(a)), length - n)
    return start, start + n


def parse_region(text: str, width: int, height: int) -> Box:
    """``"x0,y0,x1,y1"`` (image pixels) -> a box inside the image of at least 8 x 8 pixels.

    Raises:
      ValueError: with a one-line message saying what is wrong.
    """
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"a region is x0,y0,x1,y1 in whole image pixels, got {text[:60]!r}") from None
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"region {x0},{y0},{x1},{y1} is not inside the {width}x{height} image")
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise ValueError(f"region {x0},{y0},{x1},{y1} is smaller than 8x8 pixels")
    return x0, y0, x1, y1


def check_routable(region: Box, width: int, height: int, tiling: Tiling) -> None:
    """Refuse a region that ``route_prompt`` never gives for an image of ``width x height``, so that
    only regions some prompt needs get embedded (and cached): a tile of ``tile_grid``, or a crop.

    A crop (``crop_around`` of a prompt no tile holds) has side ``S`` = the larger of its width and
    height, and is ``min(width, S) x min(height, S)``: square unless the image cuts it. ``S`` is more
    than ``overlap x (1 + 2 x crop_padding)`` (a prompt no tile holds is longer than the overlap)
    and less than the image's long side (else the whole image answers the prompt).

    Raises:
      ValueError: with a one-line message saying what is wrong.
    """
    if not tiling.is_tiled(width, height):
        raise ValueError(
            f"the {width}x{height} image is not tiled (its long side is at most {tiling.threshold}): "
            "ask for its whole embedding"
        )
    if region in tile_grid(width, height, tiling):
        return
    x0, y0, x1, y1 = region
    side = max(x1 - x0, y1 - y0)
    least = math.floor(tiling.overlap * (1 + 2 * tiling.crop_padding)) + 1
    if (x1 - x0, y1 - y0) != (min(width, side), min(height, side)) or not least <= side < max(width, height):
        raise ValueError(
            f"region {x0},{y0},{x1},{y1} is neither a tile of the {width}x{height} image nor a crop around "
            f"a prompt (square, {least}..{max(width, height) - 1} pixels a side, cut only by the image's edges)"
        )


def region_key(region: Box) -> str:
    """A file-name-safe name of a region: ``x0_y0_x1_y1``."""
    return "_".join(str(v) for v in region)
