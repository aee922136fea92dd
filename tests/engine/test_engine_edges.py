"""Zero-shot edge maps (``maskloop edges``): the thinning, then the real model on a known scene."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from support import cli

from maskloop.engine.edges import thin


def test_thin_keeps_the_ridge_across_the_gradient():
    x = np.arange(20, dtype=np.float32)
    ridge = np.tile(np.exp(-((x - 9) ** 2) / 8), (10, 1))  # a vertical edge's magnitude, peaked at x = 9
    thinned = thin(ridge, np.ones_like(ridge), np.zeros_like(ridge))
    assert (thinned[:, 9] > 0).all() and (thinned[:, :9] == 0).all() and (thinned[:, 10:] == 0).all()


def test_edge_map_shape_range_and_where_its_strongest_edges_lie(scene, engine_model):
    from maskloop.engine.edges import edge_map
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb

    folder, masks = scene
    image = load_image_rgb(folder / "scene.png")
    embedding = ImageEmbedder(engine_model).embed([image])
    edges = edge_map(engine_model, embedding, image.shape[:2], points_per_side=4)
    assert edges.shape == image.shape[:2] and edges.dtype == np.uint8 and edges.max() == 255
    boundary = np.zeros(edges.shape, bool)
    for m in masks.values():
        boundary |= m & ~cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    strong = edges >= 128
    distance = cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, 5)
    assert strong.sum() > 100 and (distance[strong] <= 3).mean() > 0.8  # the strong edges are the objects'


def test_cli_writes_one_png_per_image_at_its_size(scene, tmp_path):
    folder, _ = scene
    out = tmp_path / "edges"
    done = cli.run("edges", "--images", str(folder), "--out", str(out), "--points-per-side", "4")
    assert done.returncode == 0, done.stderr
    written = Image.open(out / "scene.png")
    assert written.size == (480, 360) and written.mode == "L"
    assert cli.run("edges", "--images", str(tmp_path / "none"), "--out", str(out)).returncode == 2
