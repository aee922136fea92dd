"""Training samples: an image's cached embedding and its accepted masks in the decoder's frames.

Coordinates: boxes in the model's 1024-long-side frame (``model``), targets and interior weights
in its 256x256 low-res frame (model frame / 4, padded bottom/right; ``valid`` is the un-padded part).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt
import torch

from maskloop.prompt import preprocess_shape, xy_image_to_model


@dataclass
class ImageSample:
    """One training image: its embedding and its masks in the decoder's low-res frame.

    ``embedding`` [1,256,64,64] float32; ``targets`` [M,1,256,256] float (0/1); ``valid`` (lh, lw):
    the un-padded part of the low-res frame; ``boxes_model`` [M,4] x0,y0,x1,y1 in the model frame;
    ``interior`` [M,256,256] float: distance of each target pixel to the mask boundary (sampling
    weights for interior clicks); ``image_hw`` (H, W) of the original image; ``input_size`` the
    model frame's long side.
    """

    embedding: torch.Tensor
    targets: torch.Tensor
    valid: tuple[int, int]
    boxes_model: npt.NDArray[np.float32]
    interior: npt.NDArray[np.float32]
    image_hw: tuple[int, int]
    input_size: int
    annotation_ids: list[int] = field(default_factory=list)


def prepare_sample(
    embedding: np.ndarray,
    masks: Sequence[np.ndarray],
    annotation_ids: Sequence[int] = (),
    input_size: int = 1024,
    low_res_size: int = 256,
) -> ImageSample:
    """Bring an image's HxW bool masks into the decoder's frames (see ``ImageSample``)."""
    h, w = masks[0].shape
    new_h, new_w = preprocess_shape(h, w, input_size)
    scale = low_res_size / input_size
    lh, lw = max(1, round(new_h * scale)), max(1, round(new_w * scale))
    targets = np.zeros((len(masks), 1, low_res_size, low_res_size), np.float32)
    interior = np.zeros((len(masks), low_res_size, low_res_size), np.float32)
    boxes = np.zeros((len(masks), 4), np.float32)
    for i, mask in enumerate(masks):
        small = cv2.resize(mask.astype(np.float32), (lw, lh), interpolation=cv2.INTER_AREA) >= 0.5
        targets[i, 0, :lh, :lw] = small
        interior[i, :lh, :lw] = cv2.distanceTransform(np.pad(small.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        ys, xs = np.nonzero(mask)
        corners = np.array([[xs.min(), ys.min()], [xs.max() + 1, ys.max() + 1]], np.float32)
        boxes[i] = xy_image_to_model(corners, (h, w), input_size).reshape(4)
    return ImageSample(
        embedding=torch.from_numpy(np.asarray(embedding, np.float32)),
        targets=torch.from_numpy(targets),
        valid=(lh, lw),
        boxes_model=boxes,
        interior=interior,
        image_hw=(h, w),
        input_size=input_size,
        annotation_ids=list(annotation_ids),
    )
