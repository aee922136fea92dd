"""Embeddings of maskloop's own photos (the replay photos, the generic check set), cached per model.

A training run needs them every time, but they depend only on the photo and the image encoder:
they are computed once per (checkpoint, photo) and kept as ``.npy`` files under the user's cache
folder (``maskloop.paths.cache_dir() / "photo-embeddings" / <checkpoint sha256[:16]>``), written
to a temporary name and renamed, so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from maskloop.digest import sha256_file

#: Embeds one HxWx3 uint8 RGB image: float32 [1,256,64,64].
Embed = Callable[[np.ndarray], np.ndarray]


def photo_embeddings(
    paths: Sequence[Path], embed: Embed, checkpoint_sha256: str, cache_root: Path
) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """(embedding float32 [1,256,64,64], (H, W) of the photo as shown) per path, in order."""
    from maskloop.exporter.embedding import load_image_rgb

    folder = cache_root / "photo-embeddings" / checkpoint_sha256[:16]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in paths:
        image = load_image_rgb(path)
        entry = folder / f"{sha256_file(path)}.npy"
        try:
            embedding = np.load(entry)
        except (OSError, ValueError):
            embedding = np.asarray(embed(image), np.float32)
            tmp = entry.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                np.save(handle, embedding)
            os.replace(tmp, entry)
        out.append((embedding, (int(image.shape[0]), int(image.shape[1]))))
    return out
