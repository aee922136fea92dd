"""Image embeddings: one function used by the server, the CLI, the benchmarks and the tests.

Pre-processing is SAM's: the longest side resized to the encoder's input size (1024)
with ``ResizeLongestSide``, normalised by the model's pixel mean/std, zero-padded at the
bottom and right to a square. The encoder maps that ``[N,3,1024,1024]`` batch to
embeddings of shape ``[N,256,64,64]``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from maskloop.errors import UserError
from maskloop.exporter.image_file import check_rgb, load_image_rgb, rgb_as_shown

__all__ = ["ImageEmbedder", "load_image_rgb", "resolve_device", "resolve_precision", "rgb_as_shown"]

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a CUDA GPU is usable, else ``cpu``; checks an explicit ``cuda``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but PyTorch sees no CUDA GPU: use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise UserError(f"unknown device {device!r}: use auto, cpu or cuda")
    return device


def resolve_precision(precision: str, model_type: str, device: str) -> str:
    """``auto`` -> ``bf16`` for the ViTs on CUDA (4x faster there and the masks agree: see
    bench/RESULTS.md), else ``fp32``; any other value is returned as given."""
    if precision != "auto":
        return precision
    return "bf16" if device == "cuda" and model_type != "vit_t" else "fp32"


class ImageEmbedder:
    """Computes SAM image embeddings in batches on one device.

    Arguments:
      model (Sam): any registry model (``maskloop.exporter.registry.load_sam``).
      device (str): ``cpu`` or ``cuda``.
      precision (str): ``fp32``, or ``bf16`` / ``fp16`` autocast on CUDA.
      fused_attention (bool): use ``scaled_dot_product_attention`` in ViT encoders.
      compile (bool): ``torch.compile`` the encoder (CUDA; the first batch then takes ~1 min).
      cpu_runtime (str): on the CPU, ``onnxruntime`` runs the encoder exported to ONNX
        (vit_t / vit_b; exported once and cached), ``torch`` keeps PyTorch; ``auto`` picks
        onnxruntime where the model can be exported.
    """

    def __init__(
        self,
        model: Sam,
        device: str = "cpu",
        precision: str = "fp32",
        fused_attention: bool = True,
        compile: bool = False,
        cpu_runtime: str = "auto",
    ) -> None:
        from segment_anything.utils.transforms import ResizeLongestSide

        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        if precision != "fp32" and device != "cuda":
            raise UserError(f"precision {precision} needs a CUDA device; use fp32 on the CPU")
        self.model = model.to(device).eval()
        self.device = device
        self.precision = precision
        self.input_size: int = model.image_encoder.img_size
        self.transform = ResizeLongestSide(self.input_size)
        self.batch_size = 8 if device == "cuda" else 1
        if fused_attention:
            from maskloop.exporter.fast_attention import use_fused_attention

            use_fused_attention(self.model)
        self.encoder = torch.compile(self.model.image_encoder) if compile else self.model.image_encoder
        self.onnx_session = None
        #: The exported encoder the CPU runs (None on PyTorch).
        self.onnx_path: Path | None = None
        if device == "cpu" and cpu_runtime != "torch":
            from maskloop.exporter.encoder_onnx import ensure_encoder_onnx, exportable

            if cpu_runtime == "onnxruntime" or exportable(self.model):
                import onnxruntime as ort

                options = ort.SessionOptions()
                # onnxruntime's memory pattern keeps a second block of the encoder's activations
                # beside its arena after the second run: +275 MiB of resident memory for the
                # server's life (vit_t: 1,157 -> 880 MiB in a bare process), at no speed gain here.
                options.enable_mem_pattern = False
                self.onnx_path = ensure_encoder_onnx(self.model)
                self.onnx_session = ort.InferenceSession(
                    str(self.onnx_path), options, providers=["CPUExecutionProvider"]
                )
        # PIL's resize releases the GIL: resize a batch's images in parallel on the CPU.
        self._resize_pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """HxWx3 uint8 RGB images -> (N,3,S,S) float32 normalised, padded batch on the device (S=1024)."""
        for image in images:
            check_rgb(image)
        batch = []
        for resized in self._resize_pool.map(self.transform.apply_image, images):
            tensor = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()
            batch.append(self.model.preprocess(tensor[None].float()))
        return torch.cat(batch, dim=0)

    @torch.inference_mode()
    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embed images of any sizes.

        Arguments:
          images: HxWx3 uint8 RGB arrays (EXIF already applied, see ``load_image_rgb``).
        Returns:
          (np.ndarray) float32 of shape [N,256,64,64], in input order.
        """
        starts = range(0, len(images), self.batch_size)
        if not starts:
            return np.zeros((0, 256, 64, 64), np.float32)
        out = []
        batch = self.preprocess(images[: self.batch_size])
        for start in starts:
            encoded = self.encode(batch)  # queued on the GPU; returns before it finishes there
            following = start + self.batch_size
            if following < len(images):  # resize the next batch on the CPU meanwhile
                batch = self.preprocess(images[following : following + self.batch_size])
            out.append(encoded.float().cpu().numpy())
        return np.concatenate(out, axis=0)

    @torch.inference_mode()
    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        """(N,3,1024,1024) pre-processed batch -> (N,256,64,64) embeddings (in the autocast dtype)."""
        if self.onnx_session is not None:
            # TinyViT's traced graph fixes the batch size at 1: run image by image.
            rows = [self.onnx_session.run(None, {"image": row[None].numpy()})[0] for row in batch]
            return torch.from_numpy(np.concatenate(rows))
        autocast = (
            torch.autocast(device_type="cuda", dtype=PRECISIONS[self.precision])
            if self.precision != "fp32"
            else contextlib.nullcontext()
        )
        with autocast:
            embeddings: torch.Tensor = self.encoder(batch)
            return embeddings
