"""Decoders that evaluation, boxes-to-masks and proposals share: PyTorch or exported ONNX.

Both take prompts in original-image pixels and return ``decoder_runtime.Prediction``
(4 candidates: index 0 the single-mask output, 1..3 the ambiguity masks), so a number
measured through one is comparable with the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from maskloop.exporter.decoder_runtime import OnnxDecoder, Prediction, prompt_arrays

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


class Decoder(Protocol):
    def predict(
        self,
        embedding: np.ndarray,
        image_hw: tuple[int, int],
        points_xy: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box_xyxy: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
    ) -> Prediction: ...


class TorchDecoder:
    """SAM's prompt encoder + mask decoder in PyTorch (the same graph the exporter traces)."""

    def __init__(self, model: Sam) -> None:
        from segment_anything.utils.onnx import SamOnnxModel

        self.model = model.eval()
        self.wrapper = SamOnnxModel(model, return_single_mask=False)
        self.input_size = int(model.image_encoder.img_size)
        self.threshold = float(model.mask_threshold)

    @torch.inference_mode()
    def predict(
        self,
        embedding: np.ndarray,
        image_hw: tuple[int, int],
        points_xy: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box_xyxy: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
    ) -> Prediction:
        """Same arguments as ``OnnxDecoder.predict``; runs on the model's device."""
        xy, lab = prompt_arrays(image_hw, self.input_size, points_xy, labels, box_xyxy)
        device = self.model.device
        mask = (
            np.zeros((1, 1, 256, 256), np.float32)
            if mask_input is None
            else np.asarray(mask_input, np.float32).reshape(1, 1, 256, 256)
        )
        masks, iou, low_res = self.wrapper(
            torch.from_numpy(np.asarray(embedding, np.float32)).to(device),
            torch.from_numpy(xy).to(device),
            torch.from_numpy(lab).to(device),
            torch.from_numpy(mask).to(device),
            torch.tensor([0.0 if mask_input is None else 1.0], device=device),
            torch.tensor(image_hw, dtype=torch.float32, device=device),
        )
        return Prediction(
            masks=(masks[0] > self.threshold).cpu().numpy(),
            iou=iou[0].cpu().numpy(),
            low_res_logits=low_res[0].cpu().numpy(),
        )


def make_decoder(kind: str, model: Sam | None = None, export_dir=None) -> Decoder:
    """``torch`` (needs ``model``), ``onnx`` or ``onnx-int8`` (need ``export_dir``)."""
    if kind == "torch":
        if model is None:
            raise ValueError("the torch decoder needs the model")
        return TorchDecoder(model)
    return OnnxDecoder(export_dir, precision="int8" if kind == "onnx-int8" else "fp32")
