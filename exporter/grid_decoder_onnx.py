"""The grid decoder (``exporter/grid_decoder.py``) as an ONNX graph, run with onnxruntime on the CPU.

On a 2-core CPU onnxruntime runs the grid decoder about twice as fast as PyTorch's eager kernels
(fused element-wise work, no per-op dispatch). The graph is exported from the model it is given,
so a fine-tuned decoder (``engine/versions.py``) gets its own graph; exports are cached under
``cache_dir()/grid_decoders/`` by a hash of the prompt encoder's and mask decoder's weights, and
each one is checked against the PyTorch grid decoder before it is used.

Graph inputs: the ``PreparedImage`` tensors (``IMAGE_INPUTS``), ``cells`` [rows, cols] (only its
shape is read: the embedding cells to upscale) and ``sparse`` [B,2,C] (the prompt encoder's
point + padding embeddings, computed in PyTorch); outputs ``low_res`` [B,3,4*rows,4*cols] and
``iou`` [B,3]. The batch and the cells are dynamic.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from maskloop.digest import weights_sha256
from maskloop.exporter.grid_decoder import GridDecoder, PreparedImage
from maskloop.exporter.model_lock import onnx_export

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from segment_anything.modeling import Sam

IMAGE_INPUTS = ("src", "k1", "v1", "q1", "pe_k2", "pe_q2", "pe_kf")
#: Largest difference of low-res logits / IoUs between the graph and the PyTorch grid decoder.
MAX_LOGIT_DIFF = 1e-3
MAX_IOU_DIFF = 1e-4
#: (model-input shape, batch) the export is traced with, and those it is verified on (dynamic axes).
TRACE_SHAPE, TRACE_BATCH = (683, 1024), 4
VERIFY_CASES = (((1024, 1024), 3), ((1024, 77), 1), ((683, 1024), 16))

_SESSIONS: dict[tuple[str, int], InferenceSession] = {}
_SESSIONS_LOCK = threading.Lock()


class _Graph(torch.nn.Module):
    """``GridDecoder.decode`` with the prepared image as graph inputs (the modules registered, for tracing)."""

    def __init__(self, model: Sam) -> None:
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        self.grid = GridDecoder(model)

    def forward(
        self,
        src: torch.Tensor,
        k1: torch.Tensor,
        v1: torch.Tensor,
        q1: torch.Tensor,
        pe_k2: torch.Tensor,
        pe_q2: torch.Tensor,
        pe_kf: torch.Tensor,
        cells: torch.Tensor,
        sparse: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``PreparedImage``'s tensors, ``cells`` (only its [rows, cols] shape is read) and the
        points' sparse embeddings -> ``GridDecoder.decode``'s (logits, iou)."""
        image = PreparedImage(src, k1, v1, q1, pe_k2, pe_q2, pe_kf, cells.shape[0], cells.shape[1])
        return self.grid.decode(image, sparse)


def _feeds(image: PreparedImage, sparse: torch.Tensor) -> dict[str, np.ndarray]:
    feeds = {name: getattr(image, name).detach().cpu().numpy() for name in IMAGE_INPUTS}
    feeds["cells"] = np.zeros((image.rows, image.cols), np.float32)
    feeds["sparse"] = sparse.detach().cpu().numpy()
    return feeds


def _example(grid: GridDecoder, input_hw: tuple[int, int], batch: int, seed: int) -> tuple[PreparedImage, torch.Tensor]:
    """A prepared random embedding and ``batch`` points' sparse embeddings, for tracing and checking."""
    rng = np.random.default_rng(seed)
    embedding = torch.from_numpy(rng.normal(0, 0.5, (1, 256, 64, 64)).astype(np.float32))
    points = torch.from_numpy((rng.random((batch, 2)) * np.array(input_hw)[::-1]).astype(np.float32))
    with torch.no_grad():
        return grid.prepare(embedding, input_hw), grid.prompt_tokens(points)


def export_grid_decoder(model: Sam, path: Path) -> None:
    """Trace the grid decoder of ``model`` (CPU copy) into ``path`` and check it against PyTorch on other shapes.

    Raises RuntimeError if onnxruntime's results differ from the PyTorch grid decoder's.
    """
    import onnxruntime as ort

    graph = _Graph(model).eval()
    image, sparse = _example(graph.grid, TRACE_SHAPE, TRACE_BATCH, seed=0)
    inputs = tuple(getattr(image, name) for name in IMAGE_INPUTS) + (torch.zeros(image.rows, image.cols), sparse)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation; shape constants are checked below
        onnx_export(
            graph,
            inputs,
            str(path),
            input_names=[*IMAGE_INPUTS, "cells", "sparse"],
            output_names=["low_res", "iou"],
            dynamic_axes={"cells": {0: "rows", 1: "cols"}, "sparse": {0: "points"}},
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed, (input_hw, batch) in enumerate(VERIFY_CASES, start=1):
        image, sparse = _example(graph.grid, input_hw, batch, seed)
        with torch.no_grad():
            low_res, iou = graph.grid.decode(image, sparse)
        got_low_res, got_iou = session.run(None, _feeds(image, sparse))
        logit_diff = float(np.abs(got_low_res - low_res.numpy()).max())
        iou_diff = float(np.abs(got_iou - iou.numpy()).max())
        if got_low_res.shape != tuple(low_res.shape) or logit_diff > MAX_LOGIT_DIFF or iou_diff > MAX_IOU_DIFF:
            raise RuntimeError(
                f"the exported grid decoder differs from PyTorch at {input_hw}, {batch} points: "
                f"shape {got_low_res.shape} vs {tuple(low_res.shape)}, logits {logit_diff:.2e}, IoU {iou_diff:.2e}"
            )


def ensure_grid_decoder(model: Sam, cache: Path) -> Path:
    """The verified graph of ``model``'s decoder under ``cache`` (exported on first use, a few seconds)."""
    weights = weights_sha256({"prompt_encoder": model.prompt_encoder, "mask_decoder": model.mask_decoder})
    path = cache / f"grid-{weights[:20]}.onnx"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            export_grid_decoder(model, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path


class OnnxGridDecoder:
    """``GridDecoder``'s interface (``prepare``, ``__call__``) with the decoding run by onnxruntime.

    Arguments:
      model: a SAM model on the CPU; the graph is built from its weights (cached, see the module docstring).
      threads: onnxruntime's intra-op threads (None: torch's thread count).
      cache: the folder of exported graphs (None: ``cache_dir()/grid_decoders``).
    """

    def __init__(self, model: Sam, threads: int | None = None, cache: Path | None = None) -> None:
        import onnxruntime as ort

        from maskloop.paths import cache_dir

        self.grid = GridDecoder(model)
        path = ensure_grid_decoder(model, cache or cache_dir() / "grid_decoders")
        threads = threads or torch.get_num_threads()
        with _SESSIONS_LOCK:  # one session per graph and thread count in a process
            key = (str(path), threads)
            if key not in _SESSIONS:
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                _SESSIONS[key] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.session = _SESSIONS[key]

    def prepare(self, embedding: torch.Tensor, input_hw: tuple[int, int]) -> PreparedImage:
        return self.grid.prepare(embedding, input_hw)

    @torch.inference_mode()
    def __call__(self, image: PreparedImage, points_model: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points [B,2] (XY, model-input frame) -> low-res logits [B,3,4*rows,4*cols], predicted IoU [B,3]."""
        low_res, iou = self.session.run(None, _feeds(image, self.grid.prompt_tokens(points_model)))
        return torch.from_numpy(low_res), torch.from_numpy(iou)
