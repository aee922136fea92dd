"""The image encoder on onnxruntime alone (exporter/onnx_encoder.py): the same embeddings as
``ImageEmbedder``, and a server that embeds on the CPU without loading PyTorch (issue 24: memory)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from support.live_server import LiveServer

from maskloop.exporter.registry import checkpoint_sha256

SAMPLE_IMAGES = Path(__file__).resolve().parents[2] / "sample_images"


def _known_encoder(default_model) -> Path:
    """The default checkpoint's exported encoder, recorded in the index (as `maskloop model prepare` does)."""
    from maskloop.exporter.embedding import ImageEmbedder
    from maskloop.exporter.onnx_encoder import known_encoder, remember

    embedder = ImageEmbedder(default_model)
    assert embedder.onnx_path is not None
    remember(checkpoint_sha256("vit_t", None), embedder.onnx_path)
    path = known_encoder(checkpoint_sha256("vit_t", None))
    assert path == embedder.onnx_path
    return path


def test_onnx_encoder_gives_the_embedders_embeddings(default_model, photos, photo_embeddings, tmp_path):
    from maskloop.exporter.onnx_encoder import OnnxEncoder

    manifest = {"input_size": 1024, "pixel_mean": default_model.pixel_mean.flatten().tolist()}
    manifest["pixel_std"] = default_model.pixel_std.flatten().tolist()
    encoder = OnnxEncoder(_known_encoder(default_model), manifest)
    for name, image in photos.items():
        assert np.array_equal(encoder.embed([image]), photo_embeddings[name]), name


def test_a_cpu_server_embeds_without_loading_pytorch(default_model, web_cache, tmp_path):
    _known_encoder(default_model)
    data = tmp_path / "photos"
    data.mkdir()
    shutil.copy(SAMPLE_IMAGES / "chelsea.jpg", data / "chelsea.jpg")
    server = LiveServer(data, tmp_path / "work", cache=web_cache, args=["--no-precompute", "--device", "cpu"])
    try:
        image_id = server.image_id("chelsea.jpg")
        assert len(server.get_bytes(f"/api/images/{image_id}/embedding")) > 2_000_000
        maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
        assert "libtorch_cpu" not in maps, "the server loaded PyTorch to embed on the CPU"
        assert server.get_json("/api/images")[0]["embedding_ready"] is True
    finally:
        server.stop()
