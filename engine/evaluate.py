"""Simulated interactive segmentation: the standard click protocol (RITM / SAM paper).

First click: the interior point of the object farthest from its boundary. Each next click:
the point farthest from the boundary of the largest error region — foreground if the region
is missed object, background if it is a false positive. The previous low-resolution logits
are fed back as ``mask_input``. One click takes the best of the 3 ambiguity candidates by
predicted IoU; more clicks take the single-mask output. Reported: mIoU after 1..k clicks,
NoC@85 / NoC@90 (clicks to reach that IoU, ``max_clicks`` if never), and box-prompt mIoU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

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


def next_click(gt: np.ndarray, pred: np.ndarray) -> tuple[tuple[int, int], int] | None:
    """The next simulated click ((x, y), label) on the largest error region, or None if perfect."""
    best_area, best = 0, None
    for error, label in ((gt & ~pred, FOREGROUND), (pred & ~gt, BACKGROUND)):
        n, components, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), connectivity=8)
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] > best_area:
                best_area, best = stats[i, cv2.CC_STAT_AREA], (components == i, label)
    if best is None:
        return None
    return farthest_from_boundary(best[0]), best[1]


def noc(ious: list[float], threshold: float, max_clicks: int) -> int:
    """Number of clicks until IoU ≥ threshold (``max_clicks`` if never reached)."""
    for k, iou in enumerate(ious, start=1):
        if iou >= threshold:
            return k
    return max_clicks


@dataclass
class ObjectResult:
    ious: list[float]
    box_iou: float


@dataclass
class EvaluationResult:
    objects: list[ObjectResult] = field(default_factory=list)
    max_clicks: int = 20

    def summary(self) -> dict:
        ious = np.array([o.ious for o in self.objects]) if self.objects else np.zeros((0, self.max_clicks))
        return {
            "miou_at_clicks": [round(float(v), 4) for v in ious.mean(axis=0)] if len(ious) else [],
            "noc85": round(float(np.mean([noc(o.ious, 0.85, self.max_clicks) for o in self.objects])), 3)
            if self.objects
            else None,
            "noc90": round(float(np.mean([noc(o.ious, 0.90, self.max_clicks) for o in self.objects])), 3)
            if self.objects
            else None,
            "box_miou": round(float(np.mean([o.box_iou for o in self.objects])), 4) if self.objects else None,
            "objects": len(self.objects),
        }


def click_session(
    decoder: Decoder, embedding: np.ndarray, gt: np.ndarray, max_clicks: int
) -> Iterator[tuple[np.ndarray, float]]:
    """The click protocol on one ground-truth mask ``gt`` (HxW bool, image pixels as shown), lazily:
    per click, the predicted mask (HxW bool, same frame) and its IoU with ``gt``, at most
    ``max_clicks`` times. A click on an already perfect mask changes nothing (the same mask again).
    Stop iterating to stop clicking: nothing is decoded ahead.
    """
    h, w = gt.shape
    points: list[tuple[int, int]] = []
    labels: list[int] = []
    pred = np.zeros_like(gt)
    low_res = None
    iou = 0.0
    for _ in range(max_clicks):
        click = (farthest_from_boundary(gt), FOREGROUND) if not points else next_click(gt, pred)
        if click is None:  # already perfect: later clicks change nothing
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
        yield pred, iou


def evaluate_object(
    decoder: Decoder, embedding: np.ndarray, gt: np.ndarray, max_clicks: int, settle: tuple[int, float] | None = None
) -> ObjectResult:
    """Run the click protocol (``click_session``) on one ground-truth mask (HxW bool) of an image.

    ``settle`` = (k, iou): once at least k clicks are done and the IoU is at least ``iou``, the
    remaining clicks are not run and repeat the last IoU. Exact for mIoU@1..k and for NoC at
    thresholds up to ``iou``; it saves most of the decoder runs of a long protocol.
    """
    ious: list[float] = []
    for _, iou in click_session(decoder, embedding, gt, max_clicks):
        ious.append(iou)
        if settle and len(ious) >= settle[0] and iou >= settle[1]:
            break
    ious += ious[-1:] * (max_clicks - len(ious))
    h, w = gt.shape
    ys, xs = np.nonzero(gt)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    box_pred = decoder.decode(embedding, Prompt((h, w), box_xyxy=box))
    return ObjectResult(ious=ious, box_iou=mask_iou(box_pred.masks[0], gt))


def evaluate(
    samples: Iterable[tuple[np.ndarray, list[np.ndarray]]],
    decoder: Decoder,
    max_clicks: int = 20,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
    settle: tuple[int, float] | None = None,
) -> EvaluationResult:
    """Evaluate over (embedding [1,256,64,64], [ground-truth HxW bool masks]) per image (``settle``: see
    ``evaluate_object``)."""
    result = EvaluationResult(max_clicks=max_clicks)
    for embedding, masks in progress(samples):
        for gt in masks:
            if gt.any():
                result.objects.append(evaluate_object(decoder, embedding, gt.astype(bool), max_clicks, settle))
    return result
