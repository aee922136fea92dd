"""The image encoder on onnxruntime alone, without importing PyTorch: what a CPU server embeds with
once the encoder of its checkpoint has been exported (``encoder_onnx.ensure_encoder_onnx``, by an
``ImageEmbedder``, once per checkpoint on this machine).

Importing this CUDA build of PyTorch with torchvision and building the model leaves ~550 MiB
resident in the process (bench/RESULTS.md, issue 24); a server that only embeds and decodes on
the CPU does not need it. The encoder files are found by the checkpoint's sha256 through
``cache_dir()/encoders/index.json``, which ``remember`` writes when an ``ImageEmbedder`` loads one
(its own file name is a hash of the loaded weights, which needs PyTorch to compute).

Frames: an HxWx3 uint8 RGB image (EXIF applied) is resized so its long side is ``input_size``
(PIL bilinear, as SAM's ``ResizeLongestSide``), normalised with the manifest's pixel mean / std,
and zero-padded at the bottom and right to ``input_size`` square: the same float32 numbers as
``ImageEmbedder.preprocess``, so the embeddings are the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from maskloop.exporter.image_file import check_rgb
from maskloop.paths import cache_dir
from maskloop.prompt import preprocess_shape


def _index_path() -> Path:
    return cache_dir() / "encoders" / "index.json"


def remember(checkpoint_sha256: str, encoder: Path) -> None:
    """Record that ``encoder`` (an exported ``.onnx``) is the image encoder of this checkpoint."""
    index = _read_index()
    if index.get(checkpoint_sha256) == encoder.name:
        return
    index[checkpoint_sha256] = encoder.name
    path = _index_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    tmp.replace(path)


def known_encoder(checkpoint_sha256: str) -> Path | None:
    """The exported encoder of this checkpoint, or None when it was never exported here."""
    name = _read_index().get(checkpoint_sha256)
    path = _index_path().parent / name if name else None
    return path if path is not None and path.is_file() else None


def _read_index() -> dict[str, str]:
    try:
        index = json.loads(_index_path().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in index.items()} if isinstance(index, dict) else {}


class OnnxEncoder:
    """Embeds images with the encoder's ONNX graph (batch size 1).

    Arguments:
      path: the exported encoder ((1,3,S,S) normalised padded image -> (1,256,64,64)).
      manifest: the base decoder's manifest: ``input_size`` (S), ``pixel_mean``, ``pixel_std``.
    """

    batch_size = 1

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        import onnxruntime as ort

        self.input_size = int(manifest["input_size"])
        self.pixel_mean = np.asarray(manifest["pixel_mean"], np.float32)
        self.pixel_std = np.asarray(manifest["pixel_std"], np.float32)
        options = ort.SessionOptions()
        options.enable_mem_pattern = False  # as ImageEmbedder's session (exporter/embedding.py)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def preprocess(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """HxWx3 uint8 RGB -> (1,3,S,S) float32, normalised and padded."""
        check_rgb(image)
        h, w = preprocess_shape(image.shape[0], image.shape[1], self.input_size)
        resized = np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR), np.float32)
        normalised = (resized - self.pixel_mean) / self.pixel_std
        batch = np.zeros((1, 3, self.input_size, self.input_size), np.float32)
        batch[0, :, :h, :w] = normalised.transpose(2, 0, 1)
        return batch

    def embed(self, images: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """HxWx3 uint8 RGB images -> float32 [N,256,64,64] embeddings, in input order."""
        if not images:
            return np.zeros((0, 256, 64, 64), np.float32)
        rows = [self.session.run(None, {"image": self.preprocess(image)})[0] for image in images]
        return np.concatenate(rows).astype(np.float32, copy=False)
