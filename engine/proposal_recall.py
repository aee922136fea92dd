"""Object-proposal recall of the automatic stage (the SAM paper's zero-shot object proposals).

The automatic generator's masks of each image, ranked by its score (predicted IoU), are matched to
the ground-truth masks by pycocotools' COCOeval (``segm``: mask IoU, class-agnostic, crowd regions
ignored as COCO does); recall is averaged over the IoU thresholds 0.5:0.05:0.95 (AR) at the first
10, 100 and 1000 proposals per image, and for ``all`` object sizes, plus AR@1000 by size.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from maskloop.engine.dataset import annotated_image_ids, resolve_image

if TYPE_CHECKING:
    from pycocotools.coco import COCO

#: Proposals per image at which recall is reported.
LIMITS = (10, 100, 1000)


class Generator(Protocol):
    def generate(self, image: np.ndarray, embedding: np.ndarray | None = None) -> list[dict[str, Any]]:
        """SA-1B-style records of ``image`` (HxWx3 uint8): ``segmentation`` (COCO RLE), ``predicted_iou``."""
        ...


class Embedder(Protocol):
    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """Embeddings [N,256,64,64] of HxWx3 uint8 images."""
        ...


def proposals(
    coco: COCO,
    images_dir: Path,
    generator: Generator,
    embedder: Embedder | None,
    image_ids: list[int],
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
) -> list[dict[str, Any]]:
    """COCO result records (``image_id``, ``segmentation`` RLE in the image frame, ``score``) of the
    generator's masks of every image of ``image_ids``, at most ``LIMITS[-1]`` per image, best first."""
    from maskloop.exporter.embedding import load_image_rgb

    out: list[dict[str, Any]] = []
    for image_id in progress(image_ids):
        image = load_image_rgb(resolve_image(images_dir, coco.imgs[image_id]["file_name"]))
        embedding = embedder.embed([image]) if embedder is not None else None
        masks = sorted(generator.generate(image, embedding), key=lambda m: -float(m["predicted_iou"]))
        for m in masks[: LIMITS[-1]]:
            out.append({"image_id": image_id, "segmentation": m["segmentation"], "score": float(m["predicted_iou"])})
    return out


def average_recall(coco: COCO, results: list[dict[str, Any]], image_ids: list[int]) -> dict[str, Any]:
    """AR (IoU 0.5:0.05:0.95), recall at IoU 0.5, at ``LIMITS`` proposals per image; ``results`` as ``proposals``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    skip = {c["id"] for c in coco.dataset.get("categories", []) if c.get("name") == "_background_"}
    gt.dataset = {
        "images": [coco.imgs[i] for i in image_ids],
        "categories": [{"id": 1, "name": "object"}],
        "annotations": [
            {**a, "category_id": 1}
            for a in coco.dataset["annotations"]
            if a["image_id"] in set(image_ids) and a.get("category_id") not in skip
        ],
    }
    quiet = contextlib.redirect_stdout(io.StringIO())  # pycocotools prints progress lines
    with quiet:
        gt.createIndex()
        dt = gt.loadRes([{**r, "category_id": 1} for r in results]) if results else None
    report: dict[str, Any] = {
        "limits": list(LIMITS),
        "objects": len(gt.dataset["annotations"]),
        "images": len(image_ids),
    }
    if dt is None:
        for k in LIMITS:
            report[f"ar@{k}"] = report[f"recall50@{k}"] = 0.0
        return report
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, dt, "segm")
        ev.params.imgIds = image_ids
        ev.params.useCats = 0
        ev.params.maxDets = list(LIMITS)
        ev.evaluate()
        ev.accumulate()
    recall = ev.eval["recall"]  # [T thresholds, K categories, A areas, M maxDets]; -1 where no object

    def mean(values: np.ndarray) -> float | None:
        valid = values[values > -1]
        return round(float(valid.mean()), 4) if valid.size else None

    for m, k in enumerate(LIMITS):
        report[f"ar@{k}"] = mean(recall[:, :, 0, m])
        report[f"recall50@{k}"] = mean(recall[0, :, 0, m])
    for a, size in enumerate(("small", "medium", "large"), start=1):
        report[f"ar_{size}@{LIMITS[-1]}"] = mean(recall[:, :, a, -1])
    return report


def proposal_recall(
    coco: COCO,
    images_dir: Path,
    generator: Generator,
    embedder: Embedder | None,
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
) -> dict[str, Any]:
    """Average recall of ``generator``'s proposals on the images of ``coco`` that have ground truth.

    Returns ``ar@K`` and ``recall50@K`` for K in ``LIMITS``, ``ar_small/medium/large@1000``,
    ``objects``, ``images`` and ``proposals_per_image`` (mean kept proposals)."""
    image_ids = annotated_image_ids(coco)
    results = proposals(coco, images_dir, generator, embedder, image_ids, progress)
    report = average_recall(coco, results, image_ids)
    report["proposals_per_image"] = len(results) / max(1, len(image_ids))
    return report
