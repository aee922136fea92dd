"""Tiling a large image and routing prompts (maskloop/tiles.py), and reading a region (exporter/regions.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskloop.exporter.regions import decoded_image, forget_decoded, read_region
from maskloop.tiles import Tiling, check_routable, parse_region, route_prompt, tile_grid, tile_starts

TILING = Tiling()


def test_tiles_cover_the_image_with_the_stated_overlap() -> None:
    for length in (1024, 1025, 2049, 6000, 9000):
        starts = tile_starts(length, 1024, 256)
        assert starts[0] == 0 and starts[-1] + min(1024, length) == length
        for a, b in itertools.pairwise(starts):
            assert a + 1024 - b >= 256  # consecutive tiles share at least the overlap


def test_every_object_up_to_the_overlap_lies_wholly_inside_a_tile() -> None:
    grid = tile_grid(9000, 6000, TILING)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        w, h = rng.integers(1, 257, 2)
        x0, y0 = rng.integers(0, 9000 - w), rng.integers(0, 6000 - h)
        assert any(t[0] <= x0 and t[1] <= y0 and x0 + w <= t[2] and y0 + h <= t[3] for t in grid)


def test_small_images_are_not_tiled() -> None:
    assert route_prompt([[10, 10]], None, 2048, 1500, TILING).kind == "image"
    assert route_prompt([[10, 10]], None, 2049, 1500, TILING).kind == "tile"


def test_a_click_goes_to_the_tile_where_it_is_farthest_from_a_cutting_edge() -> None:
    route = route_prompt([[4500, 3000]], None, 9000, 6000, TILING)
    assert route.kind == "tile"
    x0, y0, x1, y1 = route.region
    assert x1 - x0 == 1024 and y1 - y0 == 1024
    assert min(4500 - x0, x1 - 4500, 3000 - y0, y1 - 3000) >= 128  # at least half the overlap
    # near the image's corner the image border is no cut: the corner tile takes it
    assert route_prompt([[3, 3]], None, 9000, 6000, TILING).region == (0, 0, 1024, 1024)


def test_points_and_box_are_routed_together() -> None:
    route = route_prompt([[1000, 1000]], [900, 900, 1400, 1300], 9000, 6000, TILING)
    x0, y0, x1, y1 = route.region
    assert route.kind == "tile" and x0 <= 900 and y0 <= 900 and 1400 <= x1 and 1300 <= y1


def test_a_box_larger_than_a_tile_gets_a_crop_or_the_whole_image() -> None:
    route = route_prompt([], [1000, 1000, 3000, 2500], 9000, 6000, TILING)
    assert route.kind == "crop"
    x0, y0, x1, y1 = route.region
    assert x0 < 1000 and y0 < 1000 and x1 > 3000 and y1 > 2500 and x1 - x0 == y1 - y0
    assert route_prompt([], [0, 0, 8900, 5900], 9000, 6000, TILING).kind == "image"


def test_regions_are_checked() -> None:
    assert parse_region("0,0,1024,1024", 9000, 6000) == (0, 0, 1024, 1024)
    for bad in ("0,0,1024", "a,0,1,1", "0,0,9001,10", "10,10,5,20", "0,0,4,4"):
        with pytest.raises(ValueError):
            parse_region(bad, 9000, 6000)


def test_a_region_is_read_from_the_decoded_image_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, (600, 2500, 3), dtype=np.uint8)
    path = tmp_path / "big.png"
    Image.fromarray(pixels).save(path)
    forget_decoded()
    crop = read_region(path, (2000, 100, 2500, 600))
    assert crop.shape == (500, 500, 3) and np.array_equal(crop, pixels[100:600, 2000:2500])
    assert decoded_image(path) is decoded_image(path)  # kept, not decoded again
    tiff = tmp_path / "big.tif"
    Image.fromarray(pixels).save(tiff)
    assert np.array_equal(read_region(tiff, (0, 0, 10, 10)), pixels[:10, :10])


@pytest.mark.parametrize("size", [(9000, 6000), (3000, 2000), (2100, 900), (1500, 4000)])
def test_every_region_routing_gives_is_routable(size: tuple[int, int]) -> None:
    width, height = size
    rng = np.random.default_rng(width)
    kinds = set()
    for _ in range(300):
        x0, y0 = rng.uniform(0, width - 1), rng.uniform(0, height - 1)
        w, h = rng.exponential(400, 2)
        box = [x0, y0, min(width - 1.0, x0 + w), min(height - 1.0, y0 + h)] if rng.random() < 0.7 else None
        route = route_prompt([[x0, y0]], box, width, height, TILING)
        kinds.add(route.kind)
        if route.kind != "image":
            check_routable(route.region, width, height, TILING)
    assert {"tile", "crop"} <= kinds


@pytest.mark.parametrize(
    ("region", "size"),
    [
        ((1, 0, 1025, 1023), (3000, 2000)),  # off the grid, and not square
        ((0, 0, 1200, 800), (3000, 2000)),  # not square, the image does not cut it
        ((100, 100, 300, 300), (3000, 2000)),  # smaller than a prompt no tile holds
        ((0, 0, 3000, 2000), (3000, 2000)),  # the whole image
        ((0, 0, 1024, 1024), (2000, 1500)),  # an image that is not tiled
    ],
)
def test_regions_routing_never_gives_are_refused(region: tuple[int, int, int, int], size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"^[^\n]+$"):
        check_routable(region, *size, TILING)
