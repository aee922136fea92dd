"""Decoders that evaluation, boxes-to-masks and proposals share: PyTorch or exported ONNX.

Both take a ``maskloop.prompt.Prompt`` and return ``decoder_runtime.Prediction`` (4
candidates: index 0 the single-mask output, 1..3 the ambiguity masks) at the prompt's image
size, so a number measured through one is comparable with the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from maskloop.exporter.decoder_runtime import OnnxDecoder, Prediction
from maskloop.prompt import Prompt

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


class Decoder(Protocol):
    def decode(self, embedding: np.ndarray, prompt: Prompt) -> Prediction:
        """The 4 candidates for ``prompt`` on the image of ``embedding`` [1,256,64,64]."""
        ...


class TorchDecoder:
    """SAM's prompt encoder + mask decoder in PyTorch (the same graph the exporter traces)."""

    def __init__(self, model: Sam) -> None:
        from segment_anything.utils.onnx import SamOnnxModel

        self.model = model.eval()
        self.wrapper = SamOnnxModel(model, return_single_mask=False)
        self.input_size = int(model.image_encoder.img_size)
        self.threshold = float(model.mask_threshold)

    @torch.inference_mode()
    def decode(self, embedding: np.ndarray, prompt: Prompt) -> Prediction:
        """Same as ``OnnxDecoder.decode``; runs on the model's device."""
        device = self.model.device
        inputs = prompt.onnx_inputs(self.input_size)
        names = ("point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size")
        masks, iou, low_res = self.wrapper(
            torch.from_numpy(np.asarray(embedding, np.float32)).to(device),
            *(torch.from_numpy(inputs[name]).to(device) for name in names),
        )
        return Prediction(
            masks=(masks[0] > self.threshold).cpu().numpy(),
            iou=iou[0].cpu().numpy(),
            low_res_logits=low_res[0].cpu().numpy(),
        )


def make_decoder(kind: str, model: Sam | None = None, export_dir: str | Path | None = None) -> Decoder:
    """``torch`` (needs ``model``), ``onnx`` or ``onnx-int8`` (need ``export_dir``)."""
    if kind == "torch":
        if model is None:
            raise ValueError("the torch decoder needs the model")
        return TorchDecoder(model)
    if export_dir is None:
        raise ValueError(f"the {kind} decoder needs the export folder")
    return OnnxDecoder(export_dir, precision="int8" if kind == "onnx-int8" else "fp32")
