"""The image encoder as ONNX, for CPU embedding with onnxruntime (2-4x PyTorch's speed here).

Only models whose encoder fits one ONNX protobuf (< 2 GB: vit_t, vit_b) are exported; the
file is cached per weight fingerprint under ``cache_dir()/encoders``, so a checkpoint is
exported once (a few seconds for vit_t).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from maskloop.digest import weights_sha256
from maskloop.exporter.model_lock import onnx_export
from maskloop.paths import cache_dir

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Encoders above this many parameters stay on PyTorch (protobuf's 2 GB limit, export time).
MAX_PARAMETERS = 120_000_000


def exportable(model: Sam) -> bool:
    """Whether ``model``'s image encoder is small enough to run from ONNX (``MAX_PARAMETERS``)."""
    parameters: int = sum(p.numel() for p in model.image_encoder.parameters())
    return parameters <= MAX_PARAMETERS


def ensure_encoder_onnx(model: Sam, folder: Path | None = None) -> Path:
    """Path of the model's encoder ONNX ((1,3,S,S) normalised padded image -> (1,256,64,64)), exporting once.

    The batch size is fixed at 1: TinyViT's reshapes trace with constant batch sizes.
    """
    folder = folder or cache_dir() / "encoders"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"encoder-{weights_sha256({'image_encoder': model.image_encoder})[:16]}.onnx"
    if path.is_file():
        return path
    size = model.image_encoder.img_size
    dummy = torch.zeros(1, 3, size, size)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        onnx_export(
            model.image_encoder.cpu().eval(),
            (dummy,),
            str(tmp),
            input_names=["image"],
            output_names=["embedding"],
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(path)
    return path
