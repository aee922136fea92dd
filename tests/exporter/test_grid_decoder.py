"""The grid decoder computes SAM's mask decoder for single-point prompts: same logits and IoUs, any weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch


def _reference(model, embedding: torch.Tensor, points_model: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """segment-anything's own prompt encoder + mask decoder, multimask: [B,3,256,256], [B,3]."""
    labels = torch.ones(len(points_model), 1, dtype=torch.int)
    sparse, dense = model.prompt_encoder(points=(points_model[:, None, :], labels), boxes=None, masks=None)
    return model.mask_decoder(
        image_embeddings=embedding,
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=True,
    )


@pytest.mark.parametrize("input_hw", [(683, 1024), (1024, 1024), (1024, 77)])
def test_grid_decoder_equals_sam_decoder(default_model, input_hw):
    from maskloop.exporter.grid_decoder import GridDecoder

    rng = np.random.default_rng(1)
    embedding = torch.from_numpy(rng.normal(0, 0.5, (1, 256, 64, 64)).astype(np.float32))
    points = torch.from_numpy((rng.random((5, 2)) * np.array(input_hw)[::-1]).astype(np.float32))
    decoder = GridDecoder(default_model)
    with torch.inference_mode():
        low_res, iou = decoder(decoder.prepare(embedding, input_hw), points)
        ref_low_res, ref_iou = _reference(default_model, embedding, points)
    h, w = low_res.shape[-2:]
    # Only the embedding cells under the image's low-res cells plus one are upscaled (4 low-res cells each).
    low_res_cells = [math.ceil(side / 4) + 1 for side in input_hw]
    assert (h, w) == tuple(min(256, 4 * math.ceil(n / 4)) for n in low_res_cells)
    assert torch.allclose(low_res, ref_low_res[..., :h, :w], atol=1e-3), (
        (low_res - ref_low_res[..., :h, :w]).abs().max()
    )
    assert torch.allclose(iou, ref_iou, atol=1e-5)


def test_grid_decoder_decodes_with_the_weights_of_the_model_passed(default_model):
    """A fine-tuned decoder (another model version) generates with its own weights."""
    from maskloop.engine.versions import with_mask_decoder
    from maskloop.exporter.grid_decoder import GridDecoder

    state = {k: v + 0.05 * torch.randn_like(v) for k, v in default_model.mask_decoder.state_dict().items()}
    tuned = with_mask_decoder(default_model, state).eval()
    embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.5
    points = torch.tensor([[300.0, 200.0], [700.0, 500.0]])
    with torch.inference_mode():
        base = GridDecoder(default_model)
        base_low_res, _ = base(base.prepare(embedding, (1024, 1024)), points)
        grid = GridDecoder(tuned)
        low_res, iou = grid(grid.prepare(embedding, (1024, 1024)), points)
        ref_low_res, ref_iou = _reference(tuned, embedding, points)
    assert torch.allclose(low_res, ref_low_res, atol=1e-3) and torch.allclose(iou, ref_iou, atol=1e-5)
    assert not torch.allclose(low_res, base_low_res, atol=1e-2)


def test_onnx_grid_decoder_equals_sam_decoder_and_is_built_per_model(default_model, tmp_path):
    """The exported graph gives SAM's logits; another decoder's weights get their own graph."""
    from maskloop.engine.versions import with_mask_decoder
    from maskloop.exporter.grid_decoder_onnx import OnnxGridDecoder

    noise = torch.Generator().manual_seed(1)
    state = {
        k: v + 0.05 * torch.randn(v.shape, generator=noise) for k, v in default_model.mask_decoder.state_dict().items()
    }
    tuned = with_mask_decoder(default_model, state).eval()
    embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(2)) * 0.5
    points = torch.tensor([[100.0, 50.0], [500.0, 300.0], [900.0, 600.0]])
    for model in (default_model, tuned):
        decoder = OnnxGridDecoder(model, threads=2, cache=tmp_path)
        low_res, iou = decoder(decoder.prepare(embedding, (683, 1024)), points)
        with torch.inference_mode():
            ref_low_res, ref_iou = _reference(model, embedding, points)
        h, w = low_res.shape[-2:]
        assert (h, w) == (172, 256)
        assert torch.allclose(low_res, ref_low_res[..., :h, :w], atol=1e-3)
        assert torch.allclose(iou, ref_iou, atol=1e-4)
    assert len(list(tmp_path.glob("grid-*.onnx"))) == 2
