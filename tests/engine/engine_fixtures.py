"""Helpers of the data-engine tests (a module with its own name, imported as ``from engine_fixtures import ...``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils


def activate_noisy_version(engine_model, models_dir: Path) -> str:
    """A train-free fine-tuned version in a project's models folder (``WORKDIR/models``): SAM's decoder
    with noise on the output hypernetworks (so it gives other masks), made active; returns its name."""
    from maskloop.engine.versions import ModelVersions
    from maskloop.exporter.registry import checkpoint_sha256

    noise = torch.Generator().manual_seed(0)
    state = {
        k: v + 0.02 * torch.randn(v.shape, generator=noise) if k.startswith("output_hypernetworks_mlps") else v
        for k, v in engine_model.mask_decoder.state_dict().items()
    }
    versions = ModelVersions(models_dir)
    with versions.lock(), versions.new_version() as (version, path):
        torch.save(state, path / "mask_decoder.pt")
        (path / "version.json").write_text(json.dumps({"base_checkpoint_sha256": checkpoint_sha256("vit_t", None)}))
    versions.activate(version, checkpoint_sha256("vit_t", None))
    return version


def check_each_found_once(coco: dict, objects: list, hw: tuple[int, int]) -> None:
    """Every object (``engine.small_objects.PastedObject``) of an image of ``hw`` has one mask of IoU >= 0.8 in
    the COCO file, no second one of IoU > 0.5, and no part: a mask lying in it (80 % of the mask) that
    covers 20-80 % of it (a half from a tile that cuts it)."""
    rles = [
        {"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()} for a in coco["annotations"]
    ]
    assert rles, "no masks"
    area = np.asarray(mask_utils.area(rles), float)
    for k, obj in enumerate(objects):
        truth = mask_utils.encode(np.asfortranarray(obj.full(hw).astype(np.uint8)))
        iou = np.asarray(mask_utils.iou(rles, [truth], [0])).reshape(-1)
        inside = np.asarray(mask_utils.area([mask_utils.merge([r, truth], intersect=True) for r in rles]), float)
        of_mask, of_truth = inside / area, inside / float(mask_utils.area(truth))
        assert iou.max() >= 0.8, (k, obj.box, iou.max())
        assert (iou > 0.5).sum() == 1, (k, obj.box, sorted(iou)[-3:])  # never twice
        parts = (of_mask >= 0.8) & (of_truth >= 0.2) & (of_truth < 0.8)
        assert not parts.any(), (k, obj.box, of_truth[parts])
