"""``auto`` on a large image runs tile by tile (engine/tiled_auto.py): objects on tile edges and on a
corner where four tiles meet are found once each, whole, with the real vit_t model and store."""

from __future__ import annotations

import json

import pytest
from engine_fixtures import check_each_found_once
from PIL import Image
from support import cli

from maskloop.engine.small_objects import place_scene
from maskloop.tiles import Tiling, tile_grid

pytestmark = pytest.mark.slow

W, H = 2400, 1600  # tiles x: 0-1024, 688-1712, 1376-2400; y: 0-1024, 576-1600
GRID = ("--points-per-side", "16")
PLACEMENTS = [
    ((1024, 300), 110, True),  # across the first tile's right edge
    ((1712, 1250), 110, True),  # across the middle column's right edge
    ((420, 1024), 110, True),  # across the top row's bottom edge
    ((1376, 576), 110, True),  # on a corner where four tiles meet
    ((330, 330), 100, False),  # inside one tile
    ((2050, 1300), 100, False),  # inside the overlap of two tiles
]


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A folder with one 2400x1600 picture (tiled at the default threshold) and its objects' truth."""
    folder = tmp_path_factory.mktemp("field")
    image, objects = place_scene(3, W, H, PLACEMENTS)
    Image.fromarray(image).save(folder / "field.png")
    return folder, objects


def test_auto_finds_objects_on_tile_edges_once_and_whole(field, tmp_path):
    folder, objects = field
    assert Tiling().is_tiled(W, H) and len(tile_grid(W, H, Tiling())) == 6
    out = tmp_path / "auto.json"
    done = cli.run("auto", "--data", str(folder), *GRID, "--out", str(out))
    assert done.returncode == 0, done.stderr
    coco = json.loads(out.read_text())
    check_each_found_once(coco, objects, (H, W))
    tiles = tile_grid(W, H, Tiling())
    # The tiles' embeddings are cached under the image-tile key; the whole image was never embedded.
    cached = sorted(p.name for p in (folder / ".maskloop" / "embeddings").rglob("*.npy"))
    assert len(cached) == len(tiles) and all("@" in name for name in cached), cached


def test_the_propose_route_runs_a_large_image_tile_by_tile(tmp_path):
    """``POST /api/images/<id>/propose`` on a 1600x1000 picture tiled at ``TILE_THRESHOLD`` 1200 (two
    tiles, cut at x = 576 and 1024): the proposals hold each object once, whole."""
    from maskloop.server.http.app import create_app

    folder = tmp_path / "photos"
    folder.mkdir()
    hw = (1000, 1600)
    placements = [((1024, 400), 110, True), ((576, 750), 110, True), ((300, 300), 100, False)]
    image, objects = place_scene(5, hw[1], hw[0], placements)
    Image.fromarray(image).save(folder / "field.png")
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(folder),
            "WORKDIR": str(tmp_path / "work"),
            "PRECOMPUTE": False,
            "DEVICE": "cpu",
            "TORCH_THREADS": 2,
            "TILE_THRESHOLD": 1200,
        }
    )
    try:
        client = app.test_client()
        created = client.post("/api/images/1/propose", json={"points_per_side": 16})
        assert created.status_code == 201, created.get_json()
        coco = client.get("/api/export/coco?status=proposed").get_json()
    finally:
        app.extensions["maskloop"].embeddings.stop()
    assert len(coco["annotations"]) == created.get_json()["created"]
    check_each_found_once(coco, objects, hw)
    cached = sorted(p.name.split("@")[1] for p in (tmp_path / "work").rglob("*@*.npy"))
    assert cached == ["0_0_1024_1000.npy", "576_0_1600_1000.npy"]
