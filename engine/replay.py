"""The simulated annotator of ``maskloop replay``: the data engine's loop run on a labelled set.

An annotator labels images round by round with the model version active at that moment, the
way the assisted-manual stage of SAM's data engine works: per object, clicks of the standard
protocol (``engine.evaluate.click_session``: the first on the object's interior point farthest
from its boundary, each next one on the largest error region) until the mask reaches IoU
``TARGET_IOU`` with the ground truth or ``MAX_CLICKS`` clicks are spent. A mask that reached the
target is accepted as the model drew it; one that did not is accepted as the ground truth, as if
the annotator had fixed it by hand (``SimulatedMask.by_hand``). After each round the command
trains a new version; the gate decides which version the next round uses.

This module holds what needs no store: which images each round gets, one object's clicks, a
round's numbers. Masks are HxW bool in image pixels as shown (EXIF orientation applied).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maskloop.engine.evaluate import click_session
from maskloop.engine.predictors import Decoder
from maskloop.errors import UserError

#: The annotator stops clicking once the mask is this close to the ground truth (IoU) ...
TARGET_IOU = 0.9
#: ... or after this many clicks, and then fixes the mask by hand.
MAX_CLICKS = 10
#: Bounds of ``--rounds`` and ``--per-round`` (a round trains on what was labelled so far, and the
#: gate's held-out split needs at least 2 annotated images, so a round labels at least 2).
MAX_ROUNDS = 50
MIN_PER_ROUND, MAX_PER_ROUND = 2, 10_000


@dataclass
class SimulatedMask:
    """One object as the simulated annotator labelled it."""

    annotation_id: int  # the ground truth's id in the COCO file
    ious: list[float]  # IoU with the ground truth after each click (len = clicks spent)
    mask: np.ndarray  # HxW bool: what is accepted (the model's last mask, or the ground truth)
    by_hand: bool  # the target was not reached: the ground truth was accepted as if fixed by hand

    @property
    def clicks(self) -> int:
        return len(self.ious)


def annotate_object(
    decoder: Decoder,
    embedding: np.ndarray,
    gt: np.ndarray,
    annotation_id: int,
    target: float = TARGET_IOU,
    max_clicks: int = MAX_CLICKS,
) -> SimulatedMask:
    """Click on ``gt`` (HxW bool) with ``decoder`` on ``embedding`` [1,256,64,64] until IoU ≥ ``target``
    or ``max_clicks`` clicks; see the module doc for what is accepted."""
    ious: list[float] = []
    last = np.zeros_like(gt)
    for pred, iou in click_session(decoder, embedding, gt, max_clicks):
        ious.append(iou)
        last = pred
        if iou >= target:
            break
    by_hand = not ious or ious[-1] < target
    return SimulatedMask(annotation_id, ious, gt.copy() if by_hand else last.copy(), by_hand)


def round_order(image_ids: Sequence[int], rounds: int, per_round: int, seed: int) -> list[list[int]]:
    """Which images each round labels: a seeded shuffle of ``image_ids`` cut into ``rounds`` groups of
    ``per_round`` (the same for the same ids and seed).

    Raises:
      UserError: ``rounds`` or ``per_round`` out of range, or fewer images than ``rounds * per_round``.
    """
    check_sizes(rounds, per_round)
    if len(image_ids) < rounds * per_round:
        raise UserError(
            f"{rounds} rounds of {per_round} images need {rounds * per_round} images with ground-truth masks, "
            f"the COCO file has {len(image_ids)}"
        )
    order = np.random.default_rng(seed).permutation(sorted(image_ids))
    return [[int(i) for i in order[r * per_round : (r + 1) * per_round]] for r in range(rounds)]


def check_sizes(rounds: int, per_round: int) -> None:
    """Raises UserError unless 1 ≤ ``rounds`` ≤ ``MAX_ROUNDS`` and ``MIN_PER_ROUND`` ≤ ``per_round`` ≤ ``MAX_PER_ROUND``."""
    if not 1 <= rounds <= MAX_ROUNDS:
        raise UserError(f"--rounds must be from 1 to {MAX_ROUNDS}, got {rounds}")
    if not MIN_PER_ROUND <= per_round <= MAX_PER_ROUND:
        raise UserError(
            f"--per-round must be from {MIN_PER_ROUND} to {MAX_PER_ROUND} (the gate holds out at least one "
            f"image of the first round), got {per_round}"
        )


def round_numbers(masks: Sequence[SimulatedMask]) -> dict[str, Any]:
    """A round's labelling numbers: ``masks``, ``clicks_per_mask`` (mean), ``miou@1`` (mean IoU after the
    first click), ``reached_target`` (share that reached ``TARGET_IOU`` within ``MAX_CLICKS``) and
    ``by_hand`` (how many were fixed by hand)."""
    if not masks:
        return {"masks": 0, "clicks_per_mask": None, "miou@1": None, "reached_target": None, "by_hand": 0}
    return {
        "masks": len(masks),
        "clicks_per_mask": round(float(np.mean([m.clicks for m in masks])), 4),
        "miou@1": round(float(np.mean([m.ious[0] for m in masks])), 4),
        "reached_target": round(float(np.mean([not m.by_hand for m in masks])), 4),
        "by_hand": int(sum(m.by_hand for m in masks)),
    }


def clicks_ratio(rounds: Sequence[dict[str, Any]]) -> float | None:
    """Clicks per mask of the last round over the first's (the loop's value: below 1 when it pays)."""
    return _ratio(rounds[-1]["clicks_per_mask"], rounds[0]["clicks_per_mask"]) if len(rounds) >= 2 else None


def clicks_ratio_same_objects(rounds: Sequence[dict[str, Any]]) -> float | None:
    """Clicks per mask of the last round over the base model's on the same objects (``base_clicks_per_mask``).

    Last / first compares different images, and on a few dozen objects a round the draw of images
    moves it more than a retrain does; this ratio is the loop's value on one round's objects, without
    the draw (1 when the base model labelled the round)."""
    return _ratio(rounds[-1]["clicks_per_mask"], rounds[-1]["base_clicks_per_mask"]) if rounds else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` to 4 decimals; None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return round(float(numerator) / float(denominator), 4)
