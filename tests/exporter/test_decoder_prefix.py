"""The decoder split into a per-image prefix and a per-prompt graph gives SAM's masks."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from maskloop.exporter.decoder_prefix import (
    PREFIX_FORMAT,
    PREFIX_OUTPUTS,
    PROMPT_INPUTS,
    PROMPT_OPTIMIZED,
    export_prefix_pair,
    verify_prefix_pair,
)
from maskloop.exporter.onnx_export import (
    FP32_MAX_LOGIT_DIFF,
    VERIFY_SHAPES,
    ensure_decoder,
    export_decoder,
    sha256_file,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, default_model, photo_embeddings):
    out = tmp_path_factory.mktemp("prefix")
    manifest = export_decoder(
        default_model,
        out,
        model_type="vit_t",
        checkpoint_sha256="0" * 64,
        quantize=False,
        variant="lowres",
        embedding_dtype="float16",
        verify_embedding=photo_embeddings["chelsea.jpg"],
        verify_image_hw=(300, 451),
        prefix=True,
    )
    return out, manifest


def test_export_lists_both_graphs_in_the_manifest_verified_on_several_shapes(exported):
    out, manifest = exported
    split = manifest["prefix"]
    assert json.loads((out / "manifest.json").read_text())["prefix"] == split
    for part in ("prefix", "prompt"):
        assert sha256_file(out / split[part]["file"]) == split[part]["sha256"]
    assert split["prefix"]["outputs"] == PREFIX_OUTPUTS and split["prompt"]["inputs"] == PROMPT_INPUTS
    v = split["verify"]
    assert v["max_low_res_diff"] <= FP32_MAX_LOGIT_DIFF and v["mean_iou"] >= 0.999
    assert [tuple(s) for s in v["image_sizes"]] == [(300, 451), *VERIFY_SHAPES]
    # the single graph is checked against the same PyTorch answers (one reference per export)
    single = manifest["decoders"]["fp32"]["verify"]
    assert single["image_sizes"] == v["image_sizes"] and single["cases"] == v["cases"] == 24
    assert single["max_low_res_diff"] <= FP32_MAX_LOGIT_DIFF and single["mean_iou"] >= 0.999
    # The per-prompt graph is no bigger than the single one: nothing is stored twice.
    assert split["prompt"]["bytes"] <= manifest["decoders"]["fp32"]["bytes"]
    assert split["prefix"]["bytes"] < 1_000_000  # the positional encoding is computed, not stored


def test_prefix_and_prompt_graph_match_pytorch_on_another_image(exported, default_model, photo_embeddings):
    out, manifest = exported
    split = manifest["prefix"]
    report = verify_prefix_pair(
        default_model,
        out / split["prefix"]["file"],
        out / split["prompt"]["file"],
        photo_embeddings["astronaut.jpg"],
        [(512, 512), (333, 1001)],
        n_cases=12,
        seed=3,
    )
    assert report.max_low_res_diff <= FP32_MAX_LOGIT_DIFF and report.min_iou >= 0.99


def test_prompt_graph_agrees_with_the_single_graph_the_page_ran_before(exported, photo_embeddings):
    out, manifest = exported
    split = manifest["prefix"]
    single = ort.InferenceSession(str(out / manifest["decoders"]["fp32"]["file"]))
    prefix = ort.InferenceSession(str(out / split["prefix"]["file"]))
    prompt = ort.InferenceSession(str(out / split["prompt"]["file"]))
    emb = photo_embeddings["chelsea.jpg"].astype(np.float16)
    image_side = dict(zip(PREFIX_OUTPUTS, prefix.run(None, {"image_embeddings": emb})))
    rng = np.random.default_rng(0)
    mask = rng.normal(0, 4, (1, 1, 256, 256)).astype(np.float32)
    for has_mask in (0.0, 1.0):
        feeds = {
            "point_coords": np.array([[[600.0, 300.0], [200.0, 500.0], [0.0, 0.0]]], np.float32),
            "point_labels": np.array([[1, 0, -1]], np.float32),
            "mask_input": mask,
            "has_mask_input": np.array([has_mask], np.float32),
        }
        iou_a, low_a = single.run(None, {"image_embeddings": emb, **feeds})
        iou_b, low_b = prompt.run(None, {**image_side, **feeds})
        assert np.abs(low_a - low_b).max() < FP32_MAX_LOGIT_DIFF
        assert np.abs(iou_a - iou_b).max() < 1e-3
        assert ((low_a > 0) == (low_b > 0)).mean() > 0.9999


def test_the_browser_export_has_the_prefix_and_is_reused(tmp_path, default_model):
    manifest = ensure_decoder("vit_t", None, tmp_path, model=default_model)
    assert "prefix" in manifest and manifest["prefix"]["verify"]["mean_iou"] >= 0.999
    assert ensure_decoder("vit_t", None, tmp_path)["created"] == manifest["created"]
    prompt_file = tmp_path / manifest["prefix"]["prompt"]["file"]
    prompt_file.write_bytes(b"changed")  # a damaged prompt graph is exported again
    again = ensure_decoder("vit_t", None, tmp_path, model=default_model)
    assert sha256_file(prompt_file) == again["prefix"]["prompt"]["sha256"]
    old = json.loads((tmp_path / "manifest.json").read_text())
    del old["prefix"]["prompt"]["optimized"]  # written before the prompt graph was saved optimised
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    third = ensure_decoder("vit_t", None, tmp_path, model=default_model)
    assert third["created"] != again["created"] and third["prefix"]["prompt"]["optimized"] == PROMPT_OPTIMIZED
    old = json.loads((tmp_path / "manifest.json").read_text())
    del old["prefix"]["format"]  # written before the attention moved to the token side (other inputs)
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    fourth = ensure_decoder("vit_t", None, tmp_path, model=default_model)
    assert fourth["created"] != third["created"] and fourth["prefix"]["format"] == PREFIX_FORMAT


def test_prompt_graph_is_saved_optimised_and_runs_unoptimised_as_sam(exported, photo_embeddings):
    """The page creates the prompt graph's session without optimising it (cold page): the file
    holds onnxruntime's fused graph already, and run as it is gives the masks it gives optimised."""
    out, manifest = exported
    split = manifest["prefix"]
    assert split["prompt"]["optimized"] == PROMPT_OPTIMIZED
    ops = {node.op_type for node in onnx.load(str(out / split["prompt"]["file"])).graph.node}
    assert {"Gelu", "LayerNormalization"} <= ops and "Erf" not in ops and "ReduceMean" in ops  # LayerNorm2d stays
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    as_saved = ort.InferenceSession(str(out / split["prompt"]["file"]), options)
    optimised = ort.InferenceSession(str(out / split["prompt"]["file"]))
    prefix = ort.InferenceSession(str(out / split["prefix"]["file"]))
    emb = photo_embeddings["chelsea.jpg"].astype(np.float16)
    feeds = dict(zip(PREFIX_OUTPUTS, prefix.run(None, {"image_embeddings": emb})))
    feeds |= {
        "point_coords": np.array([[[600.0, 300.0], [0.0, 0.0]]], np.float32),
        "point_labels": np.array([[1, -1]], np.float32),
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
    }
    low_a = as_saved.run(["low_res_masks"], feeds)[0]
    low_b = optimised.run(["low_res_masks"], feeds)[0]
    assert np.abs(low_a - low_b).max() < 1e-4


def test_token_side_attention_gives_sams_masks_on_a_fed_back_mask_a_box_and_many_points(
    exported, default_model, photo_embeddings
):
    """The prompt graph evaluates the attention over image tokens on the token side; SAM's own
    decoder (``SamOnnxModel``, PyTorch) on the same prompts: a box refined with its own fed-back
    mask, then six points + the box (13 tokens) refined again."""
    import torch
    from segment_anything.utils.onnx import SamOnnxModel

    out, manifest = exported
    split = manifest["prefix"]
    prefix = ort.InferenceSession(str(out / split["prefix"]["file"]))
    prompt = ort.InferenceSession(str(out / split["prompt"]["file"]))
    reference = SamOnnxModel(default_model, return_single_mask=False)
    emb = photo_embeddings["chelsea.jpg"].astype(np.float16)
    image_side = dict(zip(PREFIX_OUTPUTS, prefix.run(None, {"image_embeddings": emb})))
    box = [[180.0, 60.0], [700.0, 660.0]]
    points = [[400.0, 300.0], [450.0, 350.0], [600.0, 500.0], [250.0, 200.0], [800.0, 100.0], [100.0, 600.0]]
    prompts = [
        (box, [2, 3], False),
        (box, [2, 3], True),
        ([*points, *box], [1, 1, 0, 1, 0, 0, 2, 3], True),
    ]
    mask = np.zeros((1, 1, 256, 256), np.float32)
    for coords, labels, use_mask in prompts:
        feeds = {
            "point_coords": np.array([coords], np.float32),
            "point_labels": np.array([labels], np.float32),
            "mask_input": mask if use_mask else np.zeros_like(mask),
            "has_mask_input": np.array([float(use_mask)], np.float32),
        }
        iou, low = prompt.run(None, {**image_side, **feeds})
        with torch.no_grad():
            _, ref_iou, ref = reference(
                torch.from_numpy(emb.astype(np.float32)),
                *(torch.from_numpy(v) for v in feeds.values()),
                torch.tensor([300.0, 451.0]),
            )
        ref, ref_iou = ref.numpy(), ref_iou.numpy()
        assert np.abs(low - ref).max() < FP32_MAX_LOGIT_DIFF and np.abs(iou - ref_iou).max() < 1e-3
        for j in range(4):
            assert ((low[0, j] > 0) == (ref[0, j] > 0)).mean() > 0.9999
        assert (ref[0, 0] > 0).sum() > 1000, "the prompt should select an object"
        mask = ref[:, :1]  # fed back as the page does: the best mask's low-res logits


def test_an_official_sam_checkpoint_exports_the_split_decoder(tmp_path, vit_b_checkpoint, photo_embeddings):
    """vit_b (random weights in the official layout): the split graphs follow the model's decoder."""
    from maskloop.exporter.registry import load_sam

    model = load_sam("vit_b", vit_b_checkpoint)
    prefix_path, prompt_path = export_prefix_pair(model, tmp_path)
    report = verify_prefix_pair(
        model, prefix_path, prompt_path, photo_embeddings["astronaut.jpg"], [(512, 512)], n_cases=6
    )
    assert report.max_low_res_diff <= FP32_MAX_LOGIT_DIFF and report.mean_iou >= 0.99
