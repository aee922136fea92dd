"""Helpers of the data-engine tests (a module with its own name, imported as ``from engine_fixtures import ...``)."""

from __future__ import annotations

import json
from pathlib import Path

import torch


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
