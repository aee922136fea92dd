"""Automatic masks from the cached embedding find the known objects."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def test_automatic_masks_find_the_objects(scene, engine_model):
    from maskloop.engine.automatic import AutomaticMaskGenerator, GeneratorSettings
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb

    folder, truth = scene
    image = load_image_rgb(folder / "scene.png")
    embedder = ImageEmbedder(engine_model)
    embedding = embedder.embed([image])
    calls = []
    original = embedder.embed
    embedder.embed = lambda images: calls.append(1) or original(images)
    masks = AutomaticMaskGenerator(engine_model, embedder, GeneratorSettings(points_per_side=6)).generate(image, embedding)
    assert calls == [], "the cached embedding must be used, not recomputed"
    assert masks and all({"segmentation", "area", "bbox", "predicted_iou", "stability_score"} <= set(m) for m in masks)
    decoded = [mask_utils.decode(m["segmentation"]).astype(bool) for m in masks]
    for name, gt in truth.items():
        best = max(np.logical_and(d, gt).sum() / np.logical_or(d, gt).sum() for d in decoded)
        print(name, best)
        assert best >= 0.9
