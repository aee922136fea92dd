"""Keep photos as the base model saw them: distillation on a few generic photos during a fine-tune.

A project's fine-tune sees only its own domain; unchecked, the decoder drifts on everything else
(on photos, the default model's mIoU@1 fell 0.534 -> 0.477 on voc-mini after 200 steps on the
texture domain). Each training step can add one *replay* term: a random prompt (1-3 foreground
points uniform over the image, or a random box) on one of a few photos, and the loss between the
trained decoder's output and the **base** decoder's output for the same prompt — binary
cross-entropy to the base model's mask probabilities on the low-res logits, and MSE to its
predicted IoUs. The photos carry no labels: the base model is the teacher. They are the project's
``sample_images/`` (public domain), never the gate's generic check set.

Coordinates: prompts in the model's 1024-long-side frame; logits in the 256x256 low-res frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from maskloop.prompt import preprocess_shape

if TYPE_CHECKING:
    from segment_anything.utils.onnx import SamOnnxModel


@dataclass
class ReplayPhoto:
    """A photo's embedding [1,256,64,64] float32 and its size in the model frame (h, w)."""

    embedding: torch.Tensor
    model_hw: tuple[int, int]

    @staticmethod
    def of(embedding: np.ndarray, image_hw: tuple[int, int], input_size: int = 1024) -> ReplayPhoto:
        return ReplayPhoto(torch.from_numpy(np.asarray(embedding, np.float32)), preprocess_shape(*image_hw, input_size))


def random_prompt(rng: np.random.Generator, model_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(point_coords [1,K,2], point_labels [1,K]) in the model frame: 1-3 foreground points plus the
    padding point, or a box (corners labelled 2, 3) at least 1/8 of the image on each side."""
    h, w = model_hw
    if rng.random() < 0.5:
        n = int(rng.integers(1, 4))
        xy = rng.uniform([0, 0], [w, h], size=(n, 2))
        coords = np.vstack([xy, [[0.0, 0.0]]])
        labels = np.array([1.0] * n + [-1.0])
    else:
        x0, y0 = rng.uniform([0, 0], [w * 7 / 8, h * 7 / 8])
        x1, y1 = rng.uniform([x0 + w / 8, y0 + h / 8], [w, h])
        coords = np.array([[x0, y0], [x1, y1]])
        labels = np.array([2.0, 3.0])
    return (
        torch.from_numpy(coords.astype(np.float32))[None],
        torch.from_numpy(labels.astype(np.float32))[None],
    )


def replay_loss(
    student: SamOnnxModel,
    teacher: SamOnnxModel,
    photo: ReplayPhoto,
    rng: np.random.Generator,
    device: torch.device,
) -> torch.Tensor:
    """The distillation loss of one random prompt on ``photo`` (see the module doc)."""
    from maskloop.engine.train import decode

    coords, labels = (t.to(device) for t in random_prompt(rng, photo.model_hw))
    embedding = photo.embedding.to(device)
    lh, lw = (max(1, round(s / 4)) for s in photo.model_hw)
    with torch.no_grad():
        target_logits, target_iou = decode(teacher, embedding, coords, labels, None)
    logits, iou = decode(student, embedding, coords, labels, None)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[..., :lh, :lw], torch.sigmoid(target_logits[..., :lh, :lw])
    )
    return bce + torch.nn.functional.mse_loss(iou, target_iou)
