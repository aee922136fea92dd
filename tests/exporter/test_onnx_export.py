"""The exporter: decoder.onnx with all candidates, int8, manifest, verification, CLI."""

from __future__ import annotations

import json
import subprocess
import warnings

import numpy as np
import onnxruntime as ort
import pytest
from support import cli

from maskloop.exporter.onnx_export import check_verification, export_decoder, export_onnx_file, verify_decoder
from maskloop.masks import mask_iou


@pytest.fixture(scope="module")
def vit_t_export(tmp_path_factory, default_model, photo_embeddings, photos):
    out = tmp_path_factory.mktemp("export")
    manifest = export_decoder(
        default_model,
        out,
        model_type="vit_t",
        checkpoint_sha256="x" * 64,
        quantize=True,
        verify_embedding=photo_embeddings["astronaut.jpg"],
        verify_image_hw=photos["astronaut.jpg"].shape[:2],
    )
    return out, manifest


def test_interface_keeps_sam_names_and_returns_all_candidates(vit_t_export, photo_embeddings):
    out, manifest = vit_t_export
    session = ort.InferenceSession(str(out / "decoder.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [
        "image_embeddings",
        "point_coords",
        "point_labels",
        "mask_input",
        "has_mask_input",
        "orig_im_size",
    ]
    for n_points in (1, 3, 7):  # the number of points is dynamic
        masks, iou, low_res = session.run(
            None,
            {
                "image_embeddings": photo_embeddings["astronaut.jpg"],
                "point_coords": np.full((1, n_points, 2), 500, np.float32),
                "point_labels": np.ones((1, n_points), np.float32),
                "mask_input": np.zeros((1, 1, 256, 256), np.float32),
                "has_mask_input": np.zeros(1, np.float32),
                "orig_im_size": np.array([512, 400], np.float32),
            },
        )
        assert masks.shape == (1, 4, 512, 400) and iou.shape == (1, 4) and low_res.shape == (1, 4, 256, 256)


def test_full_masks_match_sams_postprocess_for_every_image_shape(vit_t_export, default_model, photo_embeddings):
    """A centre click on square, portrait, landscape and odd-sized images: ``masks`` is SAM's
    ``postprocess_masks`` of ``low_res_masks`` (the crop was once traced as the dummy's 3:2)."""
    import torch

    out, _ = vit_t_export
    session = ort.InferenceSession(str(out / "decoder.onnx"), providers=["CPUExecutionProvider"])
    for hw in [(512, 512), (500, 500), (741, 500), (500, 741), (427, 640), (333, 1001), (1001, 77), (1500, 2250)]:
        scale = 1024 / max(hw)
        masks, _, low_res = session.run(
            None,
            {
                "image_embeddings": photo_embeddings["astronaut.jpg"],
                "point_coords": np.array([[[hw[1] * scale / 2, hw[0] * scale / 2], [0, 0]]], np.float32),
                "point_labels": np.array([[1, -1]], np.float32),
                "mask_input": np.zeros((1, 1, 256, 256), np.float32),
                "has_mask_input": np.zeros(1, np.float32),
                "orig_im_size": np.array(hw, np.float32),
            },
        )
        prepadded = (int(hw[0] * scale + 0.5), int(hw[1] * scale + 0.5))
        with torch.no_grad():
            ref = default_model.postprocess_masks(torch.from_numpy(low_res), prepadded, hw).numpy()
        assert masks.shape == ref.shape == (1, 4, *hw)
        assert np.abs(masks - ref).max() < 0.05, hw
        for j in range(4):
            assert mask_iou(masks[0, j] > 0, ref[0, j] > 0) >= 0.99, (hw, j)


def test_export_shows_no_tracer_warnings(tmp_path, default_model):
    """Only the known-harmless warnings are filtered; a clean export raises none of the rest."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx_file(default_model, tmp_path / "decoder.onnx", variant="full")
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


def test_a_crop_folded_at_trace_time_warns_and_fails_verification(
    tmp_path, default_model, photo_embeddings, monkeypatch
):
    """Put back SAM's own ONNX postprocess (it crops with ``int(tensor)``): the export must say
    so, and verification on several image shapes must reject the decoder."""
    import torch

    from maskloop.errors import UserError
    from maskloop.exporter.onnx_export import DUMMY_ORIG_IM_SIZE, DecoderOnnxModel

    monkeypatch.setattr(
        DecoderOnnxModel, "upscale", lambda self, low_res, hw: self.sam_onnx.mask_postprocessing(low_res, hw)
    )
    path = tmp_path / "folded.onnx"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx_file(default_model, path, variant="full")
    assert any(issubclass(w.category, torch.jit.TracerWarning) and "Python integer" in str(w.message) for w in caught)
    report = verify_decoder(default_model, path, photo_embeddings["astronaut.jpg"], DUMMY_ORIG_IM_SIZE, n_cases=6)
    assert report.image_sizes[0] == list(DUMMY_ORIG_IM_SIZE) and len(report.image_sizes) == 6
    assert report.max_low_res_diff < 5e-3 and report.full_res_max_diff > 1.0
    with pytest.raises(UserError, match="fp32 decoder's full-resolution masks differ from SAM's postprocess"):
        check_verification({"fp32": report.as_dict()})


def test_manifest(vit_t_export):
    out, manifest = vit_t_export
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["input_size"] == 1024 and manifest["mask_threshold"] == 0.0
    assert manifest["pixel_mean"] == pytest.approx([123.675, 116.28, 103.53])
    assert manifest["embedding"] == {"shape": [1, 256, 64, 64], "dtype": "float32"}
    assert manifest["mask_candidates"]["single_mask_index"] == 0
    for entry in manifest["decoders"].values():
        assert (out / entry["file"]).stat().st_size == entry["bytes"]
    assert set(manifest["versions"]) == {"torch", "onnx", "onnxruntime"}


def test_verification_within_tolerance(vit_t_export):
    _, manifest = vit_t_export
    fp32, int8 = manifest["decoders"]["fp32"]["verify"], manifest["decoders"]["int8"]["verify"]
    print(f"fp32 {fp32}\nint8 {int8}")
    assert fp32["max_low_res_diff"] <= 5e-3 and fp32["mean_iou"] >= 0.99
    assert int8["mean_iou"] >= 0.97
    for report in (fp32, int8):  # the full-size masks, on images of several shapes
        assert report["full_res_max_diff"] <= 0.05 and report["full_res_mean_iou"] >= 0.99
        sizes = {tuple(hw) for hw in report["image_sizes"]}
        assert {(512, 512), (741, 500), (427, 640), (333, 1001)} <= sizes


def test_verification_can_fail(vit_t_export, default_model, photo_embeddings):
    """Verifying against a different model's weights must report a large disagreement."""
    import copy

    import torch

    out, _ = vit_t_export
    other = copy.deepcopy(default_model)
    with torch.no_grad():
        other.mask_decoder.iou_token.weight.mul_(-3)
        other.mask_decoder.output_hypernetworks_mlps[1].layers[2].weight.mul_(-1)
    report = verify_decoder(other, out / "decoder.onnx", photo_embeddings["astronaut.jpg"], (512, 512), n_cases=6)
    assert report.max_low_res_diff > 1.0


def test_lowres_fp16_variant(tmp_path, default_model, photo_embeddings):
    manifest = export_decoder(
        default_model,
        tmp_path,
        model_type="vit_t",
        checkpoint_sha256="y" * 64,
        quantize=False,
        variant="lowres",
        embedding_dtype="float16",
        verify_embedding=photo_embeddings["chelsea.jpg"],
        verify_image_hw=(300, 451),
    )
    session = ort.InferenceSession(str(tmp_path / "decoder.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float16)"
    assert [o.name for o in session.get_outputs()] == ["iou_predictions", "low_res_masks"]
    assert manifest["outputs"] == ["iou_predictions", "low_res_masks"]
    assert manifest["decoders"]["fp32"]["verify"]["mean_iou"] >= 0.99
    assert manifest["decoders"]["fp32"]["verify"]["image_sizes"] == [[300, 451]]  # no masks output to check
    assert "full_res_max_diff" not in manifest["decoders"]["fp32"]["verify"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return cli.run(*args)


def test_cli_exports_random_vit_b(tmp_path, vit_b_checkpoint):
    out = tmp_path / "vit_b"
    done = _cli(
        "export-onnx", "--model-type", "vit_b", "--checkpoint", str(vit_b_checkpoint), "--out", str(out), "--no-verify"
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_type"] == "vit_b" and (out / "decoder.onnx").is_file()


def test_cli_errors_are_one_line(tmp_path, vit_b_checkpoint):
    done = _cli("export-onnx", "--model-type", "vit_h", "--checkpoint", str(vit_b_checkpoint), "--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "holds vit_b weights" in done.stderr
    done = _cli("export-onnx", "--out", str(tmp_path), "--opset", "seventeen")
    assert done.returncode == 2 and "invalid int value" in done.stderr and "Traceback" not in done.stderr
    done = _cli(
        "export-onnx", "--model-type", "vit_b", "--checkpoint", str(tmp_path / "missing.pth"), "--out", str(tmp_path)
    )
    assert done.returncode == 2 and "checkpoint not found" in done.stderr


def test_out_of_tolerance_is_an_error():
    from maskloop.errors import UserError
    from maskloop.exporter.onnx_export import check_verification

    check_verification({"fp32": {"max_low_res_diff": 1e-4, "mean_iou": 0.999}, "int8": {"mean_iou": 0.98}})
    with pytest.raises(UserError, match="fp32 decoder out of tolerance"):
        check_verification({"fp32": {"max_low_res_diff": 0.5, "mean_iou": 0.999}})
    with pytest.raises(UserError, match="int8 decoder out of tolerance: mean IoU 0.9000"):
        check_verification({"int8": {"mean_iou": 0.9}})
