"""Simulated interactive segmentation: the standard click protocol (RITM / SAM paper).

First click: the interior point of the object farthest from its boundary. Each next click:
the point farthest from the boundary of the largest error region — foreground if the region
is missed object, background if it is a false positive. The previous low-resolution logits
are fed back as ``mask_input``. One click takes the best of the 3 ambiguity candidates by
predicted IoU; more clicks take the single-mask output. Reported: mIoU after 1..k clicks,
NoC@85 / NoC@90 (clicks to reach that IoU, ``max_clicks`` if never), and box-prompt mIoU.

Two samplings of the click inside the chosen region (the SAM paper's two protocols):
``center`` (above) and ``random``, a pixel of the region drawn uniformly (the first click one of
the object's pixels), from a generator seeded by (seed, object index) so a seed repeats exactly.
The oracle curve (``oracle=True``) is measured on the same clicks: after each click, the IoU of
the candidate closest to the truth among the three ambiguity masks and the model's own choice
(after one click the model's choice is one of the three; later it is the single-mask output), so
it is never below the model's curve and the gap is what ranking the candidates costs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from maskloop.engine.predictors import Decoder
from maskloop.masks import mask_iou
from maskloop.prompt import BACKGROUND, FOREGROUND, Prompt


def farthest_from_boundary(region: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel of ``region`` (HxW bool) farthest from its boundary and the image border."""
    padded = np.pad(region.astype(np.uint8), 1)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


#: How a click is placed inside its region: ``center`` (farthest from the boundary) or ``random`` (uniform).
SAMPLINGS = ("center", "random")


def uniform_point(region: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """(x, y) of a pixel of ``region`` (HxW bool, not empty) drawn uniformly with ``rng``."""
    ys, xs = np.nonzero(region)
    i = int(rng.integers(len(xs)))
    return int(xs[i]), int(ys[i])


def place(region: np.ndarray, rng: np.random.Generator | None) -> tuple[int, int]:
    """(x, y) image pixels of a click in ``region`` (HxW bool): its centre without ``rng``, else uniform."""
    return farthest_from_boundary(region) if rng is None else uniform_point(region, rng)


def next_click(
    gt: np.ndarray, pred: np.ndarray, rng: np.random.Generator | None = None
) -> tuple[tuple[int, int], int] | None:
    """The next simulated click ((x, y), label) on the largest error region, or None if perfect.

    ``gt`` and ``pred`` are HxW bool in the same frame; the click is at the region's centre, or
    with ``rng`` a uniformly drawn pixel of the region."""
    best_area, best = 0, None
    for error, label in ((gt & ~pred, FOREGROUND), (pred & ~gt, BACKGROUND)):
        n, components, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), connectivity=8)
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] > best_area:
                best_area, best = stats[i, cv2.CC_STAT_AREA], (components == i, label)
    if best is None:
        return None
    return place(best[0], rng), best[1]


def noc(ious: list[float], threshold: float, max_clicks: int) -> int:
    """Number of clicks until IoU ≥ threshold (``max_clicks`` if never reached)."""
    for k, iou in enumerate(ious, start=1):
        if iou >= threshold:
            return k
    return max_clicks


@dataclass
class ObjectResult:
    """One object's IoU after clicks 1..max_clicks, its box-prompt IoU and, when asked, the oracle's IoUs."""

    ious: list[float]
    box_iou: float
    oracle_ious: list[float] | None = None


def curve_summary(curves: list[list[float]], max_clicks: int) -> dict[str, Any]:
    """mIoU after 1..k clicks and mean NoC@85/90 of per-object IoU curves (each ``max_clicks`` long)."""
    if not curves:
        return {"miou_at_clicks": [], "noc85": None, "noc90": None}
    ious = np.array(curves)
    return {
        "miou_at_clicks": [round(float(v), 4) for v in ious.mean(axis=0)],
        "noc85": round(float(np.mean([noc(c, 0.85, max_clicks) for c in curves])), 3),
        "noc90": round(float(np.mean([noc(c, 0.90, max_clicks) for c in curves])), 3),
    }


@dataclass
class EvaluationResult:
    objects: list[ObjectResult] = field(default_factory=list)
    max_clicks: int = 20
    sampling: str = "center"
    seed: int | None = None

    def summary(self) -> dict[str, Any]:
        """The model's curve (``miou_at_clicks``, ``noc85``, ``noc90``), ``box_miou``, ``objects``, the
        protocol (``sampling``, ``seed``) and, when measured, ``oracle`` (the oracle's curve, same keys)."""
        out = curve_summary([o.ious for o in self.objects], self.max_clicks)
        out["box_miou"] = round(float(np.mean([o.box_iou for o in self.objects])), 4) if self.objects else None
        out["objects"] = len(self.objects)
        out["sampling"] = self.sampling
        out["seed"] = self.seed if self.sampling == "random" else None
        oracle = [o.oracle_ious for o in self.objects if o.oracle_ious is not None]
        if oracle and len(oracle) == len(self.objects):
            out["oracle"] = curve_summary(oracle, self.max_clicks)
        return out


def click_session(
    decoder: Decoder,
    embedding: np.ndarray,
    gt: np.ndarray,
    max_clicks: int,
    rng: np.random.Generator | None = None,
    oracle: list[float] | None = None,
) -> Iterator[tuple[np.ndarray, float]]:
    """The click protocol on one ground-truth mask ``gt`` (HxW bool, image pixels as shown), lazily:
    per click, the predicted mask (HxW bool, same frame) and its IoU with ``gt``, at most
    ``max_clicks`` times. A click on an already perfect mask changes nothing (the same mask again).
    Stop iterating to stop clicking: nothing is decoded ahead.

    ``rng``: clicks drawn uniformly in their region (``random`` sampling) instead of at its centre.
    ``oracle``: a list that gets, per click, the best IoU among the 3 ambiguity candidates and the
    model's choice (see the module's docstring).
    """
    h, w = gt.shape
    points: list[tuple[int, int]] = []
    labels: list[int] = []
    pred = np.zeros_like(gt)
    low_res = None
    iou = 0.0
    for _ in range(max_clicks):
        click = (place(gt, rng), FOREGROUND) if not points else next_click(gt, pred, rng)
        if click is None:  # already perfect: later clicks change nothing
            if oracle is not None:
                oracle.append(oracle[-1] if oracle else iou)
            yield pred, iou
            continue
        points.append(click[0])
        labels.append(click[1])
        prompt = Prompt((h, w), np.array(points, np.float32), np.array(labels, np.float32), mask_input=low_res)
        result = decoder.decode(embedding, prompt)
        index = result.best_index(prompt.n_points)
        pred = result.masks[index]
        low_res = result.low_res_logits[index]
        iou = mask_iou(pred, gt)
        if oracle is not None:
            oracle.append(max([iou] + [mask_iou(result.masks[i], gt) for i in range(1, len(result.masks))]))
        yield pred, iou


def evaluate_object(
    decoder: Decoder,
    embedding: np.ndarray,
    gt: np.ndarray,
    max_clicks: int,
    settle: tuple[int, float] | None = None,
    rng: np.random.Generator | None = None,
    oracle: bool = False,
) -> ObjectResult:
    """Run the click protocol (``click_session``) on one ground-truth mask (HxW bool) of an image.

    ``settle`` = (k, iou): once at least k clicks are done and the IoU is at least ``iou``, the
    remaining clicks are not run and repeat the last IoU. Exact for mIoU@1..k and for NoC at
    thresholds up to ``iou``; it saves most of the decoder runs of a long protocol. It is not
    applied with ``oracle`` (the oracle's curve may still rise). ``rng``: random sampling.
    """
    ious: list[float] = []
    oracle_ious: list[float] | None = [] if oracle else None
    for _, iou in click_session(decoder, embedding, gt, max_clicks, rng, oracle_ious):
        ious.append(iou)
        if settle and not oracle and len(ious) >= settle[0] and iou >= settle[1]:
            break
    ious += ious[-1:] * (max_clicks - len(ious))
    h, w = gt.shape
    ys, xs = np.nonzero(gt)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    box_pred = decoder.decode(embedding, Prompt((h, w), box_xyxy=box))
    return ObjectResult(ious=ious, box_iou=mask_iou(box_pred.masks[0], gt), oracle_ious=oracle_ious)


def evaluate(
    samples: Iterable[tuple[np.ndarray, list[np.ndarray]]],
    decoder: Decoder,
    max_clicks: int = 20,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
    settle: tuple[int, float] | None = None,
    sampling: str = "center",
    seed: int = 0,
    oracle: bool = False,
) -> EvaluationResult:
    """Evaluate over (embedding [1,256,64,64], [ground-truth HxW bool masks]) per image (``settle``: see
    ``evaluate_object``); ``sampling`` one of ``SAMPLINGS``, ``seed`` for ``random``."""
    return evaluate_protocols(samples, decoder, (sampling,), max_clicks, progress, settle, seed, oracle)[sampling]


def evaluate_protocols(
    samples: Iterable[tuple[np.ndarray, list[np.ndarray]]],
    decoder: Decoder,
    samplings: Sequence[str] = ("center",),
    max_clicks: int = 20,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
    settle: tuple[int, float] | None = None,
    seed: int = 0,
    oracle: bool = False,
) -> dict[str, EvaluationResult]:
    """``evaluate`` with several samplings on one pass over the images (each embedding used by all)."""
    for sampling in samplings:
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {sampling!r}: one of {', '.join(SAMPLINGS)}")
    results = {s: EvaluationResult(max_clicks=max_clicks, sampling=s, seed=seed) for s in samplings}
    index = 0
    for embedding, masks in progress(samples):
        for gt in masks:
            if not gt.any():
                continue
            for sampling in samplings:
                rng = np.random.default_rng([seed, index]) if sampling == "random" else None
                results[sampling].objects.append(
                    evaluate_object(decoder, embedding, gt.astype(bool), max_clicks, settle, rng, oracle)
                )
            index += 1
    return results
