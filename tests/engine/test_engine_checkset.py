"""The generic photo check set and the replay photos that ship with maskloop (engine/checkset.py)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from maskloop.engine.checkset import REPLAY_PHOTOS, checkset_masks, checkset_photos
from maskloop.paths import SAMPLE_IMAGES


def test_checkset_masks_are_real_objects_on_sample_photos() -> None:
    photos = checkset_masks()
    assert len(photos) == 4 and sum(len(m) for _, m in photos) == 9
    for path, masks in photos:
        width, height = Image.open(path).size
        for mask in masks:
            assert mask.shape == (height, width)
            share = mask.mean()
            assert 0.005 < share < 0.8, (path.name, share)  # an object, not nothing and not everything
    # objects of one photo are different objects
    for _, masks in photos:
        for i in range(len(masks)):
            for j in range(i + 1, len(masks)):
                inter = np.logical_and(masks[i], masks[j]).sum()
                assert inter / min(masks[i].sum(), masks[j].sum()) < 0.5


def test_replay_photos_never_overlap_the_check_set() -> None:
    assert set(REPLAY_PHOTOS).isdisjoint(checkset_photos())
    assert all((SAMPLE_IMAGES / name).is_file() for name in REPLAY_PHOTOS)
    assert all((SAMPLE_IMAGES / name).is_file() for name in checkset_photos())
