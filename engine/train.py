"""Fine-tune SAM's mask decoder on accepted masks, on cached image embeddings.

SAM's recipe (paper, section 3 and appendix A), on the CPU-sized scale of one annotation project:

- The image encoder and the prompt encoder are frozen; the mask decoder (two-way transformer,
  upscaling, hypernetwork MLPs, IoU head) is trained. Images are never encoded again: a sample is
  the image's cached embedding plus its ground-truth masks.
- Prompts are simulated as SAM trains them: the first prompt is a point inside the mask (half the
  time uniform, half the time weighted towards the interior, where people click) or the mask's box
  with noise (std 10% of its side, at most 20 px). Each further round adds a click sampled
  uniformly in the error region of the previous prediction (foreground where the object was
  missed, background where it spilled over) and feeds the previous low-res logits back as
  ``mask_input``.
- Loss: focal (x20) + dice on the 256x256 low-res logits inside the image's un-padded area, and
  MSE between the predicted IoU and each candidate's actual IoU. For a single point only the best
  of the three ambiguity masks takes the mask loss; every other prompt uses the single output.

Coordinates: prompts live in the model's 1024-long-side frame (``xy_model``), the low-res logits
and targets in its 256x256 frame (``low_res``: model frame / 4, padded bottom/right).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt
import torch

from maskloop.prompt import BACKGROUND, FOREGROUND, Prompt, preprocess_shape, xy_image_to_model

if TYPE_CHECKING:
    from segment_anything.modeling import Sam
    from segment_anything.utils.onnx import SamOnnxModel

#: The decoder's candidates: 0 single-mask output, 1..3 the ambiguity masks of one point.
SINGLE, MULTI = 0, slice(1, 4)


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run (defaults measured on bench/bench_train.py)."""

    steps: int = 200
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 15
    masks_per_step: int = 2  # masks of one image decoded together per step
    max_rounds: int = 4  # extra click rounds after the first prompt
    first_round_share: float = 0.5  # share of steps that train the first prompt only
    box_share: float = 0.5  # share of first prompts that are boxes (the rest are points)
    focal_weight: float = 20.0
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    seed: int = 0


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


class PromptSimulator:
    """Simulated prompts for a batch of masks of one image, round by round (see the module doc)."""

    def __init__(
        self,
        rng: np.random.Generator,
        sample: ImageSample,
        index: np.ndarray,
        box_share: float,
        low_res_to_model: float = 4.0,
    ) -> None:
        self.rng = rng
        self.sample = sample
        self.index = index
        self.scale = low_res_to_model
        self.use_box = rng.random(len(index)) < box_share
        self.points: list[list[tuple[float, float, float]]] = [[] for _ in index]
        self.boxes = sample.boxes_model[index].copy()
        for k, i in enumerate(index):
            if self.use_box[k]:
                side = np.repeat(self.boxes[k, 2:] - self.boxes[k, :2], 2)
                self.boxes[k] += np.clip(rng.normal(0, 0.1 * side), -20, 20)
            else:
                weights = sample.interior[i] if rng.random() < 0.5 else (sample.interior[i] > 0)
                self.points[k].append((*self._sample_pixel(weights), float(FOREGROUND)))

    def _sample_pixel(self, weights: np.ndarray) -> tuple[float, float]:
        """A random point (x, y) in the model frame, drawn from low-res pixel ``weights``."""
        flat = weights.reshape(-1).astype(np.float64)
        p = flat / flat.sum()
        j = int(self.rng.choice(flat.size, p=p))
        y, x = divmod(j, weights.shape[1])
        u, v = self.rng.random(2)
        return (x + u) * self.scale, (y + v) * self.scale

    def add_error_clicks(self, low_res_logits: torch.Tensor) -> None:
        """One click per mask in the error region of the previous prediction [M,1,256,256]."""
        lh, lw = self.sample.valid
        pred = (low_res_logits[:, 0, :lh, :lw] > 0).cpu().numpy()
        for k, i in enumerate(self.index):
            gt = self.sample.targets[i, 0, :lh, :lw].numpy() > 0.5
            missed, spilled = gt & ~pred[k], pred[k] & ~gt
            n_missed, n_spilled = int(missed.sum()), int(spilled.sum())
            if n_missed + n_spilled == 0:
                region, label = gt, float(FOREGROUND)
            else:
                missed_share = n_missed / (n_missed + n_spilled)
                label = float(FOREGROUND if self.rng.random() < missed_share else BACKGROUND)
                region = missed if label else spilled
            weights = np.zeros(self.sample.interior.shape[1:], np.float32)
            weights[:lh, :lw] = region
            self.points[k].append((*self._sample_pixel(weights), label))

    def prompts(self) -> list[Prompt]:
        """This round's prompt of each mask of the batch, in the model frame."""
        out = []
        for k in range(len(self.index)):
            points = self.points[k]
            out.append(
                Prompt(
                    self.sample.image_hw,
                    np.array([(x, y) for x, y, _ in points], np.float32).reshape(-1, 2),
                    np.array([label for _, _, label in points], np.float32),
                    box_xyxy=self.boxes[k] if self.use_box[k] else None,
                    frame="model",
                    input_size=self.sample.input_size,
                )
            )
        return out

    def prompt_arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(point_coords [M,K,2] in the model frame, point_labels [M,K]) as the exported decoder takes them.

        Each row is ``Prompt.point_inputs``: points first, then the box corners (labels 2, 3) or,
        without a box, the padding point (0, 0) with label -1. Every mask of the batch has the same
        number of entries, since a box (two corners) and a first point plus padding are both two.
        """
        rows = [prompt.point_inputs(self.sample.input_size) for prompt in self.prompts()]
        coords = np.stack([xy for xy, _ in rows])
        labels = np.stack([lab for _, lab in rows])
        return torch.from_numpy(coords), torch.from_numpy(labels)

    def single_point(self) -> np.ndarray:
        """[M] bool: masks whose prompt is one point (the ambiguity candidates apply)."""
        return np.array([not b and len(p) == 1 for b, p in zip(self.use_box, self.points)])


def decode(
    wrapper: SamOnnxModel,
    embedding: torch.Tensor,
    coords: torch.Tensor,
    labels: torch.Tensor,
    mask_input: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The exported decoder's forward (``DecoderOnnxModel`` lowres) on a batch of prompts of one image.

    Returns (low_res_logits [M,4,256,256], iou_predictions [M,4]).
    """
    model = wrapper.model
    sparse = wrapper._embed_points(coords, labels)
    m = coords.shape[0]
    if mask_input is None:
        dense = model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(m, -1, *embedding.shape[-2:])
    else:
        dense = model.prompt_encoder.mask_downscaling(mask_input)
    low_res: torch.Tensor
    iou: torch.Tensor
    low_res, iou = model.mask_decoder.predict_masks(
        image_embeddings=embedding,
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
    )
    return low_res, iou


def mask_losses(
    logits: torch.Tensor, target: torch.Tensor, valid: tuple[int, int], focal_weight: float, dice_weight: float
) -> torch.Tensor:
    """Focal x weight + dice per candidate, on the valid part of the low-res frame.

    Arguments: logits [M,C,256,256], target [M,1,256,256]. Returns [M,C].
    """
    from torchvision.ops import sigmoid_focal_loss

    lh, lw = valid
    x = logits[..., :lh, :lw]
    t = target[..., :lh, :lw].expand_as(x)
    focal = sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0, reduction="none").mean(dim=(-2, -1))
    p = torch.sigmoid(x)
    dice = 1 - (2 * (p * t).sum(dim=(-2, -1)) + 1) / (p.sum(dim=(-2, -1)) + t.sum(dim=(-2, -1)) + 1)
    losses: torch.Tensor = focal_weight * focal + dice_weight * dice
    return losses


def actual_iou(logits: torch.Tensor, target: torch.Tensor, valid: tuple[int, int]) -> torch.Tensor:
    """IoU of each thresholded candidate with the target, [M,C] (the IoU head's regression target)."""
    lh, lw = valid
    pred = logits[..., :lh, :lw] > 0
    gt = target[..., :lh, :lw] > 0.5
    inter = (pred & gt).sum(dim=(-2, -1)).float()
    union = (pred | gt).sum(dim=(-2, -1)).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def round_loss(
    low_res: torch.Tensor,
    iou_pred: torch.Tensor,
    target: torch.Tensor,
    valid: tuple[int, int],
    single_point: np.ndarray,
    settings: TrainSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss of one round, and the logits to feed back [M,1,256,256] (detached).

    A single point takes the mask loss on its best ambiguity candidate and the IoU loss on all
    three; any other prompt both on the single-mask output. The fed-back candidate is the one the
    page would show: the best predicted IoU among the three for a single point.
    """
    multi = torch.from_numpy(single_point).to(low_res.device)
    losses = mask_losses(low_res, target, valid, settings.focal_weight, settings.dice_weight)  # [M,4]
    ious = actual_iou(low_res.detach(), target, valid)
    mask_loss = torch.where(multi, losses[:, MULTI].min(dim=1).values, losses[:, SINGLE])
    iou_err = (iou_pred - ious) ** 2
    iou_loss = torch.where(multi, iou_err[:, MULTI].mean(dim=1), iou_err[:, SINGLE])
    loss = (mask_loss + settings.iou_weight * iou_loss).mean()
    shown = torch.where(multi, 1 + iou_pred[:, MULTI].detach().argmax(dim=1), torch.zeros_like(multi, dtype=torch.long))
    feedback = low_res.detach()[torch.arange(len(shown), device=low_res.device), shown][:, None]
    return loss, feedback


@dataclass
class TrainProgress:
    step: int
    steps: int
    loss: float
    elapsed_s: float

    @property
    def eta_s(self) -> float:
        return self.elapsed_s / max(self.step, 1) * (self.steps - self.step)


@dataclass
class TrainResult:
    losses: list[float]
    seconds: float
    steps: int
    step_seconds: list[float] = field(default_factory=list)


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def train_decoder(
    model: Sam,
    samples: Sequence[ImageSample],
    settings: TrainSettings,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainResult:
    """Fine-tune ``model.mask_decoder`` in place on ``samples``; everything else stays frozen.

    Deterministic for a given ``settings.seed`` (same samples, same thread count). ``progress``
    is called after every step; ``should_stop`` is asked before every step (a clean early end).
    """
    from segment_anything.utils.onnx import SamOnnxModel

    if not samples:
        raise ValueError("no training samples")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    for p in model.parameters():
        p.requires_grad_(False)
    decoder = model.mask_decoder
    for p in decoder.parameters():
        p.requires_grad_(True)
    model.eval()  # no dropout / batch norm in SAM's decoder; eval keeps the frozen parts fixed
    wrapper = SamOnnxModel(model, return_single_mask=False)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, settings.steps, settings.warmup_steps)
    )
    device = next(decoder.parameters()).device
    weights = np.array([len(s.boxes_model) for s in samples], np.float64)
    weights /= weights.sum()
    losses: list[float] = []
    step_seconds: list[float] = []
    t0 = time.perf_counter()
    try:
        for step in range(settings.steps):
            if should_stop():
                break
            t_step = time.perf_counter()
            sample = samples[int(rng.choice(len(samples), p=weights))]
            n = len(sample.boxes_model)
            index = rng.choice(n, size=min(settings.masks_per_step, n), replace=False)
            sim = PromptSimulator(rng, sample, index, settings.box_share)
            target = sample.targets[index].to(device)
            embedding = sample.embedding.to(device)
            last = 0 if rng.random() < settings.first_round_share else int(rng.integers(1, settings.max_rounds + 1))
            feedback = None
            total = torch.zeros((), device=device)
            for r in range(last + 1):
                coords, labels = (t.to(device) for t in sim.prompt_arrays())
                train_round = r in (0, last)
                with torch.set_grad_enabled(train_round):
                    low_res, iou_pred = decode(wrapper, embedding, coords, labels, feedback)
                    loss, feedback = round_loss(low_res, iou_pred, target, sample.valid, sim.single_point(), settings)
                if train_round:
                    total = total + loss
                if r < last:
                    sim.add_error_clicks(feedback)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(float(total.detach()) / (1 if last == 0 else 2))
            step_seconds.append(time.perf_counter() - t_step)
            if progress:
                progress(TrainProgress(step + 1, settings.steps, losses[-1], time.perf_counter() - t0))
    finally:
        for p in model.parameters():
            p.requires_grad_(False)
    return TrainResult(losses=losses, seconds=time.perf_counter() - t0, steps=len(losses), step_seconds=step_seconds)
