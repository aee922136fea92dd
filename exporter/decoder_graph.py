"""SAM's prompt encoder + mask decoder as one ONNX graph (``decoder.onnx``): the wrapper and its trace.

The exported decoder keeps SAM's ONNX interface (inputs ``image_embeddings``
[1,256,64,64], ``point_coords`` [1,N,2] in the 1024-long-side frame, ``point_labels``
[1,N] (1 fg, 0 bg, 2/3 box corners, -1 padding), ``mask_input`` [1,1,256,256],
``has_mask_input`` [1], ``orig_im_size`` [2] as (H, W)) but returns *every* mask
candidate: index 0 is SAM's single-mask output (meant for several prompts), 1..3 the
three ambiguity candidates of a single click, each with its predicted IoU.

Outputs: ``masks`` [1,4,H,W] logits at the original image size, ``iou_predictions``
[1,4], ``low_res_masks`` [1,4,256,256] logits (fed back as ``mask_input``). The
``lowres`` variant omits ``masks`` (the browser upsamples the one mask it shows).
``masks`` is SAM's ``postprocess_masks`` computed in the graph for any ``orig_im_size``;
``verify_decoder`` checks it on several image shapes.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import torch
import torch.nn.functional as F

from maskloop.errors import UserError
from maskloop.exporter.model_lock import onnx_export

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

INPUT_NAMES = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"]
VARIANTS = ("full", "lowres")
EMBEDDING_DTYPES = ("float32", "float16")
#: The ``orig_im_size`` the decoder is traced with: no common aspect ratio, neither side 1024.
DUMMY_ORIG_IM_SIZE = (901, 1307)


#: Warnings of the export known to be harmless; any other one (e.g. a TracerWarning that a
#: tensor became a Python int, i.e. a constant of the trace) reaches the user.
class _WarningFilter(TypedDict, total=False):
    """Keyword arguments of ``warnings.filterwarnings``."""

    category: type[Warning]
    message: str
    module: str


HARMLESS_EXPORT_WARNINGS: tuple[_WarningFilter, ...] = (
    # SAM's graph needs the TorchScript exporter (dynamo=False), which torch deprecates.
    {"category": DeprecationWarning, "message": r"You are using the legacy TorchScript-based ONNX export"},
    {"category": DeprecationWarning, "message": r"The feature will be removed", "module": r"torch\.onnx\."},
    # The attention scale sqrt(head dim): the head dim is fixed by the weights.
    {
        "category": torch.jit.TracerWarning,
        "message": r"Converting a tensor to a Python float",
        "module": r"segment_anything\.modeling\.transformer$",
    },
)


class DecoderOnnxModel(torch.nn.Module):
    """SAM's ``SamOnnxModel`` returning all 4 candidates, optionally low-res only / fp16 input."""

    def __init__(self, model: Sam, variant: str = "full", embedding_dtype: str = "float32") -> None:
        super().__init__()
        from segment_anything.utils.onnx import SamOnnxModel

        self.sam_onnx = SamOnnxModel(model, return_single_mask=False)
        self.variant = variant
        self.embedding_dtype = embedding_dtype

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
        orig_im_size: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """SAM's ONNX inputs (module docstring) -> (masks, iou_predictions, low_res_masks), or
        (iou_predictions, low_res_masks) for the lowres variant."""
        if self.embedding_dtype == "float16":
            image_embeddings = image_embeddings.float()
        m = self.sam_onnx.model
        sparse = self.sam_onnx._embed_points(point_coords, point_labels)
        dense = self.sam_onnx._embed_masks(mask_input, has_mask_input)
        low_res, iou = m.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=m.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
        if self.variant == "full":
            return self.upscale(low_res, orig_im_size), iou, low_res
        return iou, low_res

    def upscale(self, low_res: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """SAM's ``postprocess_masks`` with the crop to the un-padded size computed in the graph.

        Arguments:
          low_res: [1,C,256,256] logits in the padded 1024x1024 input frame.
          orig_im_size: [2] float (H, W) of the original image.
        Returns:
          [1,C,H,W] logits: upsampled to 1024x1024, cropped to the resized image
          (long side 1024), resized to (H, W), all bilinear without corner alignment.

        ``SamOnnxModel.mask_postprocessing`` slices with ``int(...)`` of a tensor, which
        tracing turns into a constant: the crop of the dummy input's image size, whatever the
        image. Index tensors from ``arange`` keep the crop a function of ``orig_im_size``.
        """
        size = self.sam_onnx.img_size
        masks = F.interpolate(low_res, size=(size, size), mode="bilinear", align_corners=False)
        prepadded = self.sam_onnx.resize_longest_image_size(orig_im_size, size)
        masks = masks.index_select(2, torch.arange(prepadded[0])).index_select(3, torch.arange(prepadded[1]))
        hw = orig_im_size.to(torch.int64)
        out_hw = (hw[0], hw[1])  # tensors, not ints, so that the trace keeps the size a function of the input
        return F.interpolate(masks, size=out_hw, mode="bilinear", align_corners=False)  # type: ignore[arg-type]  # torch types size as ints; tensors trace


def input_names(variant: str) -> list[str]:
    """The lowres variant never resizes to the image, so it has no ``orig_im_size``."""
    return INPUT_NAMES if variant == "full" else INPUT_NAMES[:-1]


def output_names(variant: str) -> list[str]:
    return ["masks", "iou_predictions", "low_res_masks"] if variant == "full" else ["iou_predictions", "low_res_masks"]


def export_onnx_file(
    model: Sam, path: Path, *, opset: int = 17, variant: str = "full", embedding_dtype: str = "float32"
) -> None:
    """Trace the decoder wrapper into ``path`` (TorchScript exporter; SAM's graph needs it)."""
    if variant not in VARIANTS:
        raise UserError(f"unknown decoder variant {variant!r}: use one of {', '.join(VARIANTS)}")
    if embedding_dtype not in EMBEDDING_DTYPES:
        raise UserError(f"unknown embedding dtype {embedding_dtype!r}: use float32 or float16")
    wrapper = DecoderOnnxModel(model.cpu().eval(), variant, embedding_dtype)
    embed_dim = model.prompt_encoder.embed_dim
    grid = model.prompt_encoder.image_embedding_size
    mask_size = [4 * grid[0], 4 * grid[1]]
    dummy = (
        torch.randn(1, embed_dim, *grid, dtype=torch.float16 if embedding_dtype == "float16" else torch.float32),
        torch.randint(0, 1024, (1, 5, 2), dtype=torch.float),
        torch.randint(0, 4, (1, 5), dtype=torch.float),
        torch.randn(1, 1, *mask_size, dtype=torch.float),
        torch.tensor([1], dtype=torch.float),
        torch.tensor(DUMMY_ORIG_IM_SIZE, dtype=torch.float),
    )
    dynamic_axes = {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}}
    if variant == "full":
        dynamic_axes["masks"] = {2: "height", 3: "width"}
    with warnings.catch_warnings():
        for harmless in HARMLESS_EXPORT_WARNINGS:
            warnings.filterwarnings("ignore", **harmless)
        onnx_export(
            wrapper,
            dummy,
            str(path),
            export_params=True,
            verbose=False,
            opset_version=opset,
            do_constant_folding=True,
            input_names=INPUT_NAMES,
            output_names=output_names(variant),
            dynamic_axes=dynamic_axes,
            dynamo=False,
        )
