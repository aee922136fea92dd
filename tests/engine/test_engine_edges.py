"""Zero-shot edge maps (``maskloop edges``): the scene's object boundaries are found, the map has
the image's size and range, thinning leaves one-pixel edges, and bad input is one line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support.cli import run

from maskloop.engine.edges import boundary_recall, edge_map, match, object_boundaries, thin


def test_thinning_leaves_a_one_pixel_edge():
    """A blurred vertical step: its gradient ridge is 5 px wide; edge NMS keeps its crest."""
    x = np.arange(40, dtype=np.float32)
    strength = np.tile(np.exp(-((x - 20.0) ** 2) / 4.0), (10, 1))  # strongest at column 20
    thinned = thin(strength, np.zeros_like(strength))  # gradient along x
    assert (np.count_nonzero(thinned, axis=1) == 1).all() and (np.argmax(thinned, axis=1) == 20).all()
    assert thin(strength, np.full_like(strength, np.pi / 2)).astype(bool).sum() > 10 * 5  # along y: no thinning


def test_boundary_matching_counts_within_three_pixels():
    boundary = np.zeros((20, 20), bool)
    boundary[10, 2:18] = True
    kept = np.zeros((20, 20), bool)
    kept[13, 2:10] = True  # 3 px away: found
    kept[15, 10:18] = True  # 5 px away: not
    m = match(kept, boundary)
    assert (m.boundary_pixels, m.boundary_found, m.kept_pixels, m.kept_on_boundary) == (16, 8, 16, 8)


def test_edge_map_finds_the_scene_objects(engine_model, scene):
    from maskloop.engine.automatic import grid_decoder_for
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb

    folder, truth = scene
    image = load_image_rgb(folder / "scene.png")
    embedding = ImageEmbedder(engine_model).embed([image])
    edges = edge_map(engine_model, grid_decoder_for(engine_model), embedding, image.shape[:2])
    assert edges.shape == image.shape[:2] and edges.dtype == np.uint8 and edges.max() == 255
    boundary = object_boundaries([truth["disc"], truth["square"]])
    found = boundary_recall(edges.astype(np.float32), boundary)
    assert found.recall > 0.9, found  # a plain scene: nearly all of both outlines within 3 px
    interior = truth["disc"].copy()
    interior[boundary] = False
    assert edges[interior & (np.hypot(*np.mgrid[:360, :480] - np.array([180, 140])[:, None, None]) < 60)].max() < 64


def test_the_command_writes_one_png_per_image_of_its_size(scene, tmp_path):
    folder, _ = scene
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    Image.open(folder / "scene.png").save(images / "sub" / "scene.jpg")
    Image.open(folder / "scene.png").resize((120, 90)).save(images / "small.png")
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "edges"
    done = run("edges", "--images", str(images), "--out", str(out), "--points-per-side", "8", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "wrote 2 edge maps" in done.stdout
    for name, size in (("sub/scene.png", (480, 360)), ("small.png", (120, 90))):
        with Image.open(out / name) as png:
            assert png.size == size and png.mode == "L"
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["scene.png", "small.png"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--images", "/nonexistent", "--out", "x"], "--images folder not found"),
        (["--points-per-side", "0"], "--points-per-side must be 1..128"),
    ],
)
def test_bad_input_is_one_line(scene, tmp_path, argv, message):
    folder, _ = scene
    full = ["--images", str(folder), "--out", str(tmp_path / "o"), *argv]
    done = run("edges", *full)
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
