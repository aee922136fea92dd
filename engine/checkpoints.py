"""Best checkpoint, not last: evaluate the run's decoder on a selection split every few steps.

A fine-tune on a few dozen masks first learns the domain, then over-fits it and unlearns
refinement and boxes. ``CheckpointPicker`` is ``train_decoder``'s ``on_checkpoint``: at each
checkpoint it runs the click protocol on the *selection* split (images neither trained on nor used
by the gate), asks the gate's rule (``engine.gate.passes``; the generic photo rows against the base model)
whether the checkpoint beats the version it would replace there, and keeps a copy of a passing one.
A later passing checkpoint replaces the kept one only when its mean mIoU@1..10 is higher beyond
the noise (``engine.gate.improves``), so a longer run, which repeats a shorter one's first steps,
does not trade the shorter run's choice for one a hair better on a few selection masks. When none
passes, the best-scoring one is kept, and the gate will refuse it with its reason.

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

    def __call__(self, step: int) -> None:
        generic = click_protocol(self.model, self.generic, 5, self.should_stop) if self.generic else None
        result = gate.metrics(click_protocol(self.model, self.split, self.max_clicks, self.should_stop), generic)
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

    def summary(self) -> dict[str, Any]:
        return {
            "checkpoints": [c.as_dict() for c in self.checkpoints],
            "chosen_step": self.best.step if self.best else None,
            "chosen_passes": self.best.passes if self.best else None,
            "stopped_early": self.exhausted(),
        }
