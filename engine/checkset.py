"""maskloop's own photos for the training loop: the generic check set and the replay photos.

- **The generic check set** (``engine/checkset.json``, COCO with RLE masks): nine objects on four
  public-domain / CC0 photos of ``sample_images/`` (astronaut, camera, coffee, rocket), ground
  truth made with GrabCut from hand-placed boxes and strokes and checked by eye
  (``scripts/make_checkset.py`` remakes it and draws the overlays). The gate measures every new
  version and the base model on it, so a version that forgets photos is refused. No project
  trains on it.
- **The replay photos** (``REPLAY_PHOTOS``): the other photos of ``sample_images/``, the
  distillation term's inputs (``engine.photo_replay``). They never overlap the check set (a
  structure test holds that).

Embeddings of both are computed once per model checkpoint and cached (``engine.photo_cache``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from maskloop.engine.photo_cache import Embed, photo_embeddings
from maskloop.engine.photo_replay import ReplayPhoto
from maskloop.paths import SAMPLE_IMAGES

CHECKSET_FILE = Path(__file__).with_name("checkset.json")
#: Photos of sample_images/ the replay term distils on (none of them is in the check set).
REPLAY_PHOTOS = ("chelsea.jpg", "exif_rotated_chelsea.jpg", "hubble_deep_field.jpg", "retina.jpg")


def checkset_photos() -> list[str]:
    """File names (in ``sample_images/``) of the check set's photos."""
    return [im["file_name"] for im in json.loads(CHECKSET_FILE.read_text())["images"]]


def checkset_masks() -> list[tuple[Path, list[np.ndarray]]]:
    """(photo path, [HxW bool mask per object]) per photo of the check set."""
    from maskloop.masks import decode

    coco = json.loads(CHECKSET_FILE.read_text())
    out = []
    for image in coco["images"]:
        masks = [decode(a["segmentation"]).astype(bool) for a in coco["annotations"] if a["image_id"] == image["id"]]
        out.append((SAMPLE_IMAGES / image["file_name"], masks))
    return out


def generic_set(
    embed: Embed, checkpoint_sha256: str, cache_root: Path
) -> Callable[[], list[tuple[np.ndarray, list[np.ndarray]]]]:
    """A loader of the check set as (embedding [1,256,64,64], masks) per photo, for ``learn``."""

    def load() -> list[tuple[np.ndarray, list[np.ndarray]]]:
        photos = checkset_masks()
        embeddings = photo_embeddings([p for p, _ in photos], embed, checkpoint_sha256, cache_root)
        return [(e, masks) for (e, _), (_, masks) in zip(embeddings, photos)]

    return load


def replay_set(embed: Embed, checkpoint_sha256: str, cache_root: Path) -> Callable[[], list[ReplayPhoto]]:
    """A loader of the replay photos (``REPLAY_PHOTOS``), for ``learn``."""

    def load() -> list[ReplayPhoto]:
        paths = [SAMPLE_IMAGES / name for name in REPLAY_PHOTOS]
        return [ReplayPhoto.of(e, hw) for e, hw in photo_embeddings(paths, embed, checkpoint_sha256, cache_root)]

    return load
