"""Best checkpoint, not last: evaluate the run's decoder on a selection split every few steps.

A fine-tune on a few dozen masks first learns the domain, then over-fits it and unlearns
refinement and boxes. ``CheckpointPicker`` is ``train_decoder``'s ``on_checkpoint``: at each
checkpoint it runs the click protocol on the *selection* split (images neither trained on nor used
by the gate), asks the gate's rule (``engine.gate.passes``; the generic photo rows against the base model)
whether the checkpoint beats the version it would replace there, and keeps a copy of a passing one.
A later passing checkpoint replaces the kept one only when its mean mIoU@1..10 is higher beyond
the noise (``engine.gate.improves``), so a longer run, which repeats a shorter one's first steps,
does not trade the shorter run's choice for one a hair better on a few selection masks. When none
passes, the best-scoring one is kept; then ``finish`` tries blends of it with the weights the run
started from (the base model's, or the active version's with ``--continue``),
``start + a * (kept - start)`` for each ``a`` of ``BLENDS``, largest first, and keeps
the first that passes on the selection split (weight-space ensembling, WiSE-FT).
On a young project's few masks the kept checkpoint gains the first click and loses a later one;
halfway back toward the base it keeps part of the gain and the base's refinement (replay round 1 of
2026-12-05: the checkpoint itself mIoU@1 +0.26 but @7 -0.089 on the gate's split, refused; its
0.5 blend @1 +0.03 with no row lost, activated). When no blend passes either, the kept
checkpoint stays and the gate refuses it with its reason.

Patience: after ``patience`` checkpoints in a row that did not replace a passing kept one, the
picker is ``exhausted`` and the run stops early (the rest of a ``--minutes`` budget would only
over-fit further); ``summary`` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from maskloop.engine import gate
from maskloop.engine.evaluate import EvaluationResult, evaluate
from maskloop.engine.predictors import TorchDecoder

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: (embedding [1,256,64,64] float32, [HxW bool masks]) per image.
Split = list[tuple[np.ndarray, list[np.ndarray]]]
#: Blend weights toward the kept checkpoint tried, in order, when no checkpoint passes (1 = the checkpoint).
BLENDS = (0.75, 0.5, 0.25)


def click_protocol(
    model: Sam, split: Split, max_clicks: int, should_stop: Callable[[], bool] = lambda: False
) -> EvaluationResult:
    """``maskloop evaluate``'s protocol on ``split`` (exact for mIoU@1..10 and NoC@85/90).

    ``should_stop`` is asked before each image; when it answers yes, ``Cancelled`` is raised.
    """

    def images(it: Any) -> Any:
        for item in it:
            if should_stop():
                raise Cancelled()
            yield item

    return evaluate(split, TorchDecoder(model), max_clicks=max_clicks, progress=images, settle=(10, 0.90))


def blend_state(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor], weight: float) -> dict[str, torch.Tensor]:
    """``start + weight * (end - start)`` for every floating-point tensor of two state dicts of one
    module; other tensors (counters) are ``end``'s."""
    return {k: start[k] + weight * (v - start[k]) if v.is_floating_point() else v.clone() for k, v in end.items()}


class Cancelled(Exception):
    """Raised inside a run when its ``should_stop`` says so."""


@dataclass
class Checkpoint:
    step: int
    score: float
    passes: bool

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "score": round(self.score, 4), "passes": self.passes}


@dataclass
class CheckpointPicker:
    """Keeps the best checkpoint of ``model``'s decoder (see the module doc).

    ``reference``: the gate's metrics of the version the run would replace, on ``split``.
    """

    model: Sam
    split: Split
    reference: dict[str, Any]
    max_clicks: int
    should_stop: Callable[[], bool] = lambda: False
    #: the generic photo check set; when given, a checkpoint that forgets photos does not pass
    generic: Split = field(default_factory=list)
    #: checkpoints in a row without a replacement of a passing kept one before the run stops; 0 = never
    patience: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    best: Checkpoint | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_metrics: dict[str, Any] | None = None
    stale: int = 0
    #: the decoder's weights when the run started (blends are taken toward them); default: at construction
    start_state: dict[str, torch.Tensor] = field(default_factory=dict)
    blends: tuple[float, ...] = BLENDS
    #: the blend weight ``finish`` chose (None: the kept checkpoint itself), and each blend it tried
    blend: float | None = None
    blend_tries: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.start_state:
            self.start_state = {k: v.detach().clone() for k, v in self.model.mask_decoder.state_dict().items()}

    def _measure(self) -> dict[str, Any]:
        """The gate's metrics of the model's decoder as it is now, on the selection split (and the generic set)."""
        generic = click_protocol(self.model, self.generic, 5, self.should_stop) if self.generic else None
        return gate.metrics(click_protocol(self.model, self.split, self.max_clicks, self.should_stop), generic)

    def __call__(self, step: int) -> None:
        result = self._measure()
        point = Checkpoint(step, gate.score(result), gate.passes(self.reference, result))
        self.checkpoints.append(point)
        if self._replaces(point, result):
            self.best, self.best_metrics, self.stale = point, result, 0
            self.best_state = {k: v.detach().clone() for k, v in self.model.mask_decoder.state_dict().items()}
        elif self.best is not None and self.best.passes:
            self.stale += 1

    def _replaces(self, point: Checkpoint, result: dict[str, Any]) -> bool:
        kept, kept_metrics = self.best, self.best_metrics
        if kept is None or kept_metrics is None:
            return True
        if point.passes != kept.passes:
            return point.passes
        if point.passes:
            return gate.improves(kept_metrics, result)
        return point.score > kept.score

    def exhausted(self) -> bool:
        """Whether ``patience`` checkpoints in a row failed to replace a passing kept one."""
        return self.patience > 0 and self.stale >= self.patience

    def restore_best(self) -> None:
        """Load the best checkpoint's weights into the model's decoder (no-op without checkpoints)."""
        if self.best_state is not None:
            self.model.mask_decoder.load_state_dict(self.best_state)

    def finish(self) -> None:
        """Load the kept checkpoint or, when it does not pass, the first of its ``blends`` toward the
        start weights that does (see the module doc); the model's decoder holds the version after it."""
        self.restore_best()
        if self.best is None or self.best.passes or self.best_state is None:
            return
        for weight in self.blends:
            self.model.mask_decoder.load_state_dict(blend_state(self.start_state, self.best_state, weight))
            result = self._measure()
            passes = gate.passes(self.reference, result)
            self.blend_tries.append({"weight": weight, "score": round(gate.score(result), 4), "passes": passes})
            if passes:
                self.blend, self.best_metrics = weight, result
                return
        self.restore_best()

    def summary(self) -> dict[str, Any]:
        return {
            "checkpoints": [c.as_dict() for c in self.checkpoints],
            "chosen_step": self.best.step if self.best else None,
            "chosen_passes": self.best.passes if self.best else None,
            "blend": self.blend,
            "blend_tries": self.blend_tries,
            "stopped_early": self.exhausted(),
        }
