"""The one embedding function: SAM's pre-processing, batching, EXIF, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from maskloop.errors import UserError
from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb, resolve_device
from maskloop.paths import SAMPLE_IMAGES


def test_exif_orientation_applied():
    raw = Image.open(SAMPLE_IMAGES / "exif_rotated_chelsea.jpg")
    upright = load_image_rgb(SAMPLE_IMAGES / "exif_rotated_chelsea.jpg")
    plain = load_image_rgb(SAMPLE_IMAGES / "chelsea.jpg")
    assert raw.size[::-1] != upright.shape[:2]
    assert upright.shape == plain.shape
    assert np.abs(upright.astype(int) - plain.astype(int)).mean() < 3


def test_preprocess_is_sams(default_model, photos):
    """Longest side to 1024, normalised, zero padded bottom/right — as SamPredictor does."""
    from segment_anything import SamPredictor

    image = photos["chelsea.jpg"]  # 451x300, landscape
    ours = ImageEmbedder(default_model).preprocess([image])
    predictor = SamPredictor(default_model)
    transformed = predictor.transform.apply_image(image)
    reference = default_model.preprocess(torch.as_tensor(transformed).permute(2, 0, 1)[None].float())
    assert ours.shape == (1, 3, 1024, 1024)
    assert torch.equal(ours, reference)
    assert torch.all(ours[0, :, 682:, :] == 0)  # 300 * 1024/451 = 681.2 rows of image, then padding


def test_batch_equals_single(default_model, photos, photo_embeddings):
    embedder = ImageEmbedder(default_model)
    embedder.batch_size = 2
    both = embedder.embed([photos["astronaut.jpg"], photos["chelsea.jpg"]])
    assert both.shape == (2, 256, 64, 64) and both.dtype == np.float32
    assert np.abs(both[0] - photo_embeddings["astronaut.jpg"][0]).max() < 1e-4
    assert np.abs(both[1] - photo_embeddings["chelsea.jpg"][0]).max() < 1e-4


def test_empty_file(tmp_path):
    f = tmp_path / "empty.jpg"
    f.write_bytes(b"")
    with pytest.raises(UserError, match="empty file"):
        load_image_rgb(f)


def test_not_an_image(tmp_path):
    f = tmp_path / "notes.jpg"
    f.write_text("hello")
    with pytest.raises(UserError, match="not an image"):
        load_image_rgb(f)


def test_decompression_bomb(tmp_path, monkeypatch):
    f = tmp_path / "bomb.png"
    Image.new("RGB", (400, 400)).save(f)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(UserError, match="image too large"):
        load_image_rgb(f)


def test_grayscale_becomes_rgb(tmp_path):
    f = tmp_path / "grey.png"
    Image.new("L", (30, 20), 128).save(f)
    assert load_image_rgb(f).shape == (20, 30, 3)


def test_devices():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_half_precision_needs_cuda(default_model):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="needs a CUDA device"):
        ImageEmbedder(default_model, precision="bf16")


def test_fused_attention_matches_meta(vit_b_checkpoint):
    """SDPA with the relative-position bias computes what Meta's attention computes."""
    from maskloop.exporter.fast_attention import use_fused_attention
    from maskloop.exporter.registry import load_sam

    model = load_sam("vit_b", vit_b_checkpoint)
    torch.manual_seed(0)
    x = torch.randn(1, 3, 1024, 1024)
    with torch.inference_mode():
        reference = model.image_encoder(x)
        assert use_fused_attention(model) == 12
        fused = model.image_encoder(x)
    assert torch.allclose(fused, reference, atol=1e-4, rtol=1e-4)


def test_cpu_onnxruntime_encoder_matches_torch(default_model, photos, photo_embeddings):
    """On the CPU the encoder runs exported to ONNX; it must give PyTorch's embedding."""
    fast = ImageEmbedder(default_model, cpu_runtime="onnxruntime")
    slow = ImageEmbedder(default_model, cpu_runtime="torch")
    assert fast.onnx_session is not None and slow.onnx_session is None
    image = photos["chelsea.jpg"]
    diff = np.abs(fast.embed([image]) - slow.embed([image])).max()
    assert diff < 1e-4
    assert np.abs(fast.embed([photos["astronaut.jpg"]]) - photo_embeddings["astronaut.jpg"]).max() < 1e-4
