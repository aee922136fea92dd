"""Model registry: the four types, and one clear line for every bad checkpoint."""

from __future__ import annotations

import pytest
import torch

from maskloop.errors import UserError
from maskloop.exporter.registry import build_sam, guess_model_type, load_sam, sam_model_registry


def test_registry_names():
    assert set(sam_model_registry) == {"vit_h", "vit_l", "vit_b", "vit_t"}


def test_unknown_type():
    with pytest.raises(UserError, match="unknown model type 'vit_x'"):
        build_sam("vit_x")


def test_vit_b_official_layout_loads(vit_b_checkpoint):
    model = load_sam("vit_b", vit_b_checkpoint)
    state = torch.load(vit_b_checkpoint, weights_only=True)
    assert torch.equal(model.state_dict()["image_encoder.pos_embed"], state["image_encoder.pos_embed"])
    assert guess_model_type(state) == "vit_b"


def test_mismatched_checkpoint_names_the_right_type(vit_b_checkpoint):
    with pytest.raises(UserError, match="holds vit_b weights, not vit_h: pass --model-type vit_b"):
        load_sam("vit_h", vit_b_checkpoint)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_sam("vit_b", tmp_path / "nope.pth")


def test_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "sam_vit_b.pth"
    bad.write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint"):
        load_sam("vit_b", bad)


def test_truncated_checkpoint(tmp_path, vit_b_checkpoint):
    cut = tmp_path / "cut.pth"
    cut.write_bytes(vit_b_checkpoint.read_bytes()[:1_000_000])
    with pytest.raises(UserError, match="not a readable PyTorch checkpoint"):
        load_sam("vit_b", cut)


def test_foreign_state_dict(tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, other)
    with pytest.raises(UserError, match="not a SAM checkpoint"):
        load_sam("vit_b", other)


def test_non_default_type_needs_checkpoint():
    with pytest.raises(UserError, match="needs --checkpoint"):
        load_sam("vit_h")


def test_default_vit_t_loads(default_model):
    assert guess_model_type(default_model.state_dict()) == "vit_t"
    assert not default_model.training
