"""The active SAM model: loaded once per process, shared by requests and the embedding worker.

The model is identified by ``model_id`` = ``<model_type>-<first 12 hex of the checkpoint sha256>``;
embeddings and the exported decoder are stored under that id, so switching checkpoints never
serves a stale embedding.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_SHARED_LOCK = threading.Lock()
#: (model_type, checkpoint, device, precision) -> ImageEmbedder; one model instance per process.
_SHARED_EMBEDDERS: dict[tuple, Any] = {}
_SHA_CACHE: dict[tuple, str] = {}


def cpu_threads() -> int:
    """CPUs this process may run on (cgroup/affinity aware, unlike ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class ModelService:
    """Loads the model on first use; ``embed`` runs one batch at a time (a lock guards the model).

    Arguments:
      model_type: registry name (``vit_t``, ``vit_b``, ``vit_l``, ``vit_h``).
      checkpoint: weights file, or None for the default ``vit_t``.
      device: ``auto``, ``cpu`` or ``cuda``.
      precision: ``auto`` (fp32 on the CPU and for vit_t; bf16 for the ViTs on CUDA, where it is
        4x faster and the masks agree: see bench/RESULTS.md), ``fp32``, or ``fp16``/``bf16`` on CUDA.
      onnx_root: folder holding ``<model_id>/`` with the exported decoder.
      torch_threads: CPU threads for torch (None: every CPU this process may use).
      compile: ``torch.compile`` the encoder when it runs on CUDA.
    """

    def __init__(self, model_type: str, checkpoint: str | Path | None, device: str, precision: str,
                 onnx_root: Path, torch_threads: int | None = None, compile: bool = False) -> None:
        self.model_type = model_type
        self.checkpoint = str(checkpoint) if checkpoint else None
        self.device_request = device
        self.precision = precision
        self.onnx_root = onnx_root
        self.torch_threads = torch_threads
        self.compile = compile and self.device_request != "cpu"
        self.lock = threading.Lock()
        self._init_lock = threading.Lock()
        self._model_id: str | None = None
        self._manifest: dict | None = None

    @property
    def checkpoint_sha256(self) -> str:
        """sha256 of the checkpoint file; hashing it happens once per process."""
        from maskloop.exporter.registry import checkpoint_sha256

        key = (self.model_type, self.checkpoint)
        with _SHARED_LOCK:
            if key not in _SHA_CACHE:
                _SHA_CACHE[key] = checkpoint_sha256(self.model_type, self.checkpoint)
            return _SHA_CACHE[key]

    @property
    def model_id(self) -> str:
        """``<model_type>-<sha12>``."""
        if self._model_id is None:
            self._model_id = f"{self.model_type}-{self.checkpoint_sha256[:12]}"
        return self._model_id

    @property
    def device(self) -> str:
        from maskloop.exporter.embedding import resolve_device

        return resolve_device(self.device_request)

    def resolved_precision(self, device: str) -> str:
        if self.precision != "auto":
            return self.precision
        return "bf16" if device == "cuda" and self.model_type != "vit_t" else "fp32"

    def embedder(self) -> Any:
        """The process's ``ImageEmbedder`` for this model (built on first call)."""
        device = self.device
        precision = self.resolved_precision(device)
        key = (self.model_type, self.checkpoint, device, precision, self.compile)
        with _SHARED_LOCK:
            if key not in _SHARED_EMBEDDERS:
                import torch

                from maskloop.exporter.embedding import ImageEmbedder
                from maskloop.exporter.registry import load_sam

                if device == "cpu":
                    torch.set_num_threads(self.torch_threads or cpu_threads())
                model = load_sam(self.model_type, self.checkpoint, device=device)
                _SHARED_EMBEDDERS[key] = ImageEmbedder(model, device=device, precision=precision,
                                                       compile=self.compile and device == "cuda")
            return _SHARED_EMBEDDERS[key]

    @property
    def batch_size(self) -> int:
        return int(self.embedder().batch_size)

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """HxWx3 uint8 RGB images (EXIF applied) -> float32 [N,256,64,64] embeddings."""
        embedder = self.embedder()
        with self.lock:
            return embedder.embed(list(images))

    @property
    def onnx_dir(self) -> Path:
        return self.onnx_root / self.model_id

    def manifest(self) -> dict:
        """The exported decoder's manifest, exporting it first if needed (once per process)."""
        with self._init_lock:
            if self._manifest is None:
                from maskloop.exporter.onnx_export import ensure_decoder

                self._manifest = ensure_decoder(self.model_type, self.checkpoint, self.onnx_dir,
                                                checkpoint_sha=self.checkpoint_sha256)
            return self._manifest
