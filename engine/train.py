"""Fine-tune SAM's mask decoder on accepted masks, on cached image embeddings.

SAM's recipe (paper, section 3 and appendix A), on the CPU-sized scale of one annotation project:

- The image encoder and the prompt encoder are frozen; the mask decoder (two-way transformer,
  upscaling, hypernetwork MLPs, IoU head) is trained. Images are never encoded again: a sample is
  the image's cached embedding plus its ground-truth masks (``train_samples``).
- Prompts follow SAM's 11-round simulation (``prompt_simulation``): a first point or box, 8
  error-region points, 2 mask-only rounds, the previous logits fed back every round. A step runs
  one trajectory for a few masks of one image and takes gradients on ``trained_rounds`` of its
  rounds drawn uniformly, so every click count weighs the same (the first click is 1/11 of the
  loss, not half of it). A trajectory that starts with a box always trains its first round (the
  box alone) in place of one drawn round: otherwise a box prompt alone would take 3 of 22
  gradient rounds, and box-prompt quality slipped while every click count improved.
- Loss: focal (x20) + dice on the 256x256 low-res logits inside the image's un-padded area, and
  MSE between the predicted IoU and each candidate's actual IoU. For a single point only the best
  of the three ambiguity masks takes the mask loss; every other prompt uses the single output.
- Forgetting is bounded by L2-SP: ``anchor_weight`` x the squared distance of the decoder's
  weights to the base model's (``reference``; a run may start from an earlier version), added
  to the loss, so the model moves only where the accepted masks ask for it (no weight decay
  toward zero, which is itself a way to forget).
- The learning rate warms up, then stays constant: a longer run continues a shorter one's
  trajectory step for step (same seed), so with the best checkpoint kept (``engine.learn``) it
  can never end worse.

Coordinates: prompts live in the model's 1024-long-side frame, the low-res logits and targets in
its 256x256 frame (model frame / 4, padded bottom/right).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from maskloop.engine.photo_replay import ReplayPhoto, replay_loss
from maskloop.engine.prompt_simulation import PromptSimulator, round_plan
from maskloop.engine.train_samples import ImageSample

if TYPE_CHECKING:
    from segment_anything.modeling import Sam
    from segment_anything.utils.onnx import SamOnnxModel

#: The decoder's candidates: 0 single-mask output, 1..3 the ambiguity masks of one point.
SINGLE, MULTI = 0, slice(1, 4)


@dataclass
class TrainSettings:
    """Hyper-parameters of one training run (defaults measured on bench/bench_train.py)."""

    steps: int = 200
    lr: float = 1e-4
    anchor_weight: float = 0.0  # L2-SP: weight of the squared distance to the base decoder's weights
    warmup_steps: int = 20
    masks_per_step: int = 2  # masks of one image decoded together per step
    point_rounds: int = 8  # error-region points after the first prompt
    mask_only_rounds: int = 2  # rounds with only the previous mask as new input
    trained_rounds: int = 3  # rounds per step that take gradients (drawn uniformly)
    box_share: float = 0.5  # share of first prompts that are boxes (the rest are points)
    box_round_trained: bool = True  # a trajectory starting with a box always trains that first round
    focal_weight: float = 20.0
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    replay_weight: float = 0.0  # weight of the photo-replay distillation term (engine.photo_replay); 0 = off
    seed: int = 0
    checkpoint_every: int = 50  # steps between checkpoint callbacks (engine.learn evaluates there)


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


def lr_factor(step: int, warmup: int) -> float:
    """Linear warm-up, then constant (a longer run extends a shorter one)."""
    return min(1.0, (step + 1) / max(1, warmup))


def anchor_penalty(decoder: torch.nn.Module, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """L2-SP: the sum of squared differences of ``decoder``'s weights to ``anchor`` (its base weights)."""
    total = torch.zeros(())
    for name, p in decoder.named_parameters():
        total = total + ((p - anchor[name]) ** 2).sum()
    return total


def train_decoder(
    model: Sam,
    samples: Sequence[ImageSample],
    settings: TrainSettings,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_checkpoint: Callable[[int], None] | None = None,
    replay: Sequence[ReplayPhoto] = (),
    reference: Mapping[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Fine-tune ``model.mask_decoder`` in place on ``samples``; everything else stays frozen.

    Deterministic for a given ``settings.seed`` (same samples, same thread count): the first n
    steps of any run are the same. ``progress`` is called after every step; ``should_stop`` is
    asked before every step (a clean early end); ``on_checkpoint(step)`` every
    ``settings.checkpoint_every`` steps and after the last one (the model holds that step's weights).
    ``replay``: photos for the distillation term when ``settings.replay_weight`` > 0 (its prompts
    come from a generator of their own, so the domain's trajectories do not depend on it).
    ``reference``: the base decoder's state dict, which the L2-SP anchor and the photo teacher keep
    to when the run continues an earlier version (default: the decoder's weights at the start).
    """
    from segment_anything.utils.onnx import SamOnnxModel

    if not samples:
        raise ValueError("no training samples")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    for p in model.parameters():
        p.requires_grad_(False)
    decoder = model.mask_decoder
    kept = {k: v.detach().clone() for k, v in (reference if reference is not None else decoder.state_dict()).items()}
    anchor = {name: kept[name].to(p.device) for name, p in decoder.named_parameters()}
    for p in decoder.parameters():
        p.requires_grad_(True)
    model.eval()  # no dropout / batch norm in SAM's decoder; eval keeps the frozen parts fixed
    wrapper = SamOnnxModel(model, return_single_mask=False)
    use_replay = settings.replay_weight > 0 and len(replay) > 0
    if use_replay:
        from maskloop.engine.versions import with_mask_decoder

        teacher = SamOnnxModel(with_mask_decoder(model, kept), return_single_mask=False)
        replay_rng = np.random.default_rng(settings.seed + 1)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=settings.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, settings.warmup_steps))
    device = next(decoder.parameters()).device
    weights = np.array([len(s.boxes_model) for s in samples], np.float64)
    weights /= weights.sum()
    losses: list[float] = []
    step_seconds: list[float] = []
    t0 = time.perf_counter()
    last_checkpoint = 0
    try:
        for step in range(settings.steps):
            if should_stop():
                break
            t_step = time.perf_counter()
            sample = samples[int(rng.choice(len(samples), p=weights))]
            total, trained = trajectory_loss(wrapper, sample, rng, settings, device)
            if settings.anchor_weight > 0:
                total = total + settings.anchor_weight * anchor_penalty(decoder, anchor)
            if use_replay:
                photo = replay[int(replay_rng.integers(len(replay)))]
                total = total + settings.replay_weight * replay_loss(wrapper, teacher, photo, replay_rng, device)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(float(total.detach()) / trained)
            step_seconds.append(time.perf_counter() - t_step)
            if progress:
                progress(TrainProgress(step + 1, settings.steps, losses[-1], time.perf_counter() - t0))
            if on_checkpoint and (step + 1) % settings.checkpoint_every == 0:
                on_checkpoint(step + 1)
                last_checkpoint = step + 1
        if on_checkpoint and losses and last_checkpoint != len(losses):
            on_checkpoint(len(losses))
    finally:
        for p in model.parameters():
            p.requires_grad_(False)
    return TrainResult(losses=losses, seconds=time.perf_counter() - t0, steps=len(losses), step_seconds=step_seconds)


def trajectory_loss(
    wrapper: SamOnnxModel,
    sample: ImageSample,
    rng: np.random.Generator,
    settings: TrainSettings,
    device: torch.device,
) -> tuple[torch.Tensor, int]:
    """One simulated trajectory (``round_plan``) of a few masks of ``sample``: the summed loss of the
    ``trained_rounds`` rounds drawn to take gradients, and how many they are. Rounds after the last
    trained one are not run."""
    n = len(sample.boxes_model)
    index = rng.choice(n, size=min(settings.masks_per_step, n), replace=False)
    sim = PromptSimulator(rng, sample, index, settings.box_share)
    plan = round_plan(rng, settings.point_rounds, settings.mask_only_rounds)
    chosen = set(rng.choice(len(plan), size=min(settings.trained_rounds, len(plan)), replace=False).tolist())
    if settings.box_round_trained and sim.use_box[0] and 0 not in chosen:
        chosen.remove(sorted(chosen)[int(rng.integers(len(chosen)))])  # the box alone takes gradients
        chosen.add(0)
    target = sample.targets[index].to(device)
    embedding = sample.embedding.to(device)
    feedback = None
    total = torch.zeros((), device=device)
    for r in range(max(chosen) + 1):
        if plan[r] == "point":
            assert feedback is not None  # a point round follows the first round
            sim.add_error_clicks(feedback)
        coords, labels = (t.to(device) for t in sim.prompt_arrays())
        with torch.set_grad_enabled(r in chosen):
            low_res, iou_pred = decode(wrapper, embedding, coords, labels, feedback)
            loss, feedback = round_loss(low_res, iou_pred, target, sample.valid, sim.single_point(), settings)
        if r in chosen:
            total = total + loss
    return total, len(chosen)
