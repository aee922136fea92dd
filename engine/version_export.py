"""The browser's decoders of a trained model version, exported and verified (``engine.learn``'s last step)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from maskloop.engine.versions import decoder_only_copy

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


def export_version(
    model: Sam,
    out_dir: Path,
    model_type: str,
    base_sha256: str,
    version: str,
    embedding: np.ndarray,
    image_hw: tuple[int, ...],
) -> dict:
    """Export ``model``'s decoders as the base version's are: lowres, float16 embedding; fp32 + int8, the fp32
    one split into a per-image prefix + per-prompt graph. Verified against PyTorch on ``embedding``
    (1x256x64x64, an embedding of an image of ``image_hw`` = (H, W) pixels); writes ``out_dir/manifest.json``."""
    from maskloop.exporter.onnx_export import export_decoder

    manifest = export_decoder(
        decoder_only_copy(model),
        out_dir,
        model_type=model_type,
        checkpoint_sha256=base_sha256,
        quantize=True,
        verify=True,
        variant="lowres",
        embedding_dtype="float16",
        verify_embedding=np.asarray(embedding, np.float32),
        verify_image_hw=(int(image_hw[0]), int(image_hw[1])),
        drop_failing_int8=True,
        prefix=True,
    )
    manifest["model_version"] = version
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
