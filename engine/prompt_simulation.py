"""SAM's interactive training simulation: the prompts of one object, round by round.

The paper (appendix A, "Training algorithm"): per object, a first prompt — a foreground point or
the object's box, with equal probability — then points sampled from the error region of the
previous prediction, each round feeding the previous mask logits back as ``mask_input``, and two
rounds with **no new point**, only the previous mask, so the model learns to refine its own
output: one at the end, the other at a random place among the point rounds. That makes 11
rounds: 1 first prompt + 8 error points + 2 mask-only rounds.

- A first point is drawn inside the mask, half the time uniformly, half the time weighted by the
  distance to the boundary (where people click); a box gets noise of std 10% of its side, at
  most 20 px.
- An error point: foreground where the object was missed, background where the prediction
  spilled over, the side chosen with probability proportional to its area, the point uniform in it.

Coordinates: prompts in the model's 1024-long-side frame; error regions in the 256x256 low-res
frame (model frame / 4).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from maskloop.engine.train_samples import ImageSample
from maskloop.prompt import BACKGROUND, FOREGROUND, Prompt

RoundKind = Literal["first", "point", "mask"]


def round_plan(rng: np.random.Generator, point_rounds: int = 8, mask_only_rounds: int = 2) -> list[RoundKind]:
    """The kinds of the rounds of one trajectory: ``first``, then ``point_rounds`` points with
    ``mask_only_rounds - 1`` mask-only rounds interspersed at random, and a mask-only round last."""
    middle: list[RoundKind] = ["point"] * point_rounds
    for _ in range(max(0, mask_only_rounds - 1)):
        middle.insert(int(rng.integers(0, len(middle) + 1)), "mask")
    plan: list[RoundKind] = ["first", *middle]
    if mask_only_rounds > 0:
        plan.append("mask")
    return plan


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
        # one kind of first prompt per batch: its rows then have equal lengths (no extra padding points)
        self.use_box = np.full(len(index), rng.random() < box_share)
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
        without a box, the padding point (0, 0) with label -1. Rows of a batch can differ in
        length (a box and a first point plus padding are both two entries, but a box keeps its
        corners after the points); shorter rows are padded with (0, 0) label -1, which SAM's
        prompt encoder treats as "not a point".
        """
        rows = [prompt.point_inputs(self.sample.input_size) for prompt in self.prompts()]
        width = max(len(xy) for xy, _ in rows)
        coords = np.zeros((len(rows), width, 2), np.float32)
        labels = np.full((len(rows), width), -1.0, np.float32)
        for k, (xy, lab) in enumerate(rows):
            coords[k, : len(xy)] = xy
            labels[k, : len(lab)] = lab
        return torch.from_numpy(coords), torch.from_numpy(labels)

    def single_point(self) -> np.ndarray:
        """[M] bool: masks whose prompt is one point (the ambiguity candidates apply)."""
        return np.array([not b and len(p) == 1 for b, p in zip(self.use_box, self.points)])
