"""Stages 2 and 3 on a folder's store: automatic masks as proposals (semi) or as labels (auto).

Both stages run ``AutomaticMaskGenerator`` on the cached embedding of each image, drop masks
that duplicate a mask already on the image (IoU ≥ ``DUPLICATE_IOU``), and store the rest with
their predicted IoU and stability score: stage ``semi`` / status ``proposed`` for people to
accept, reject or refine; stage ``auto`` / status ``accepted`` when no person is involved.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

from maskloop.engine.automatic import AutomaticMaskGenerator
from maskloop.server.store import dataset
from maskloop.server.store.db import Connection, Row

DUPLICATE_IOU = 0.5
DEFAULT_CATEGORY = "object"


def embedding_from_npy(data: bytes) -> npt.NDArray[np.float32]:
    """The server's cached ``.npy`` bytes -> float32 [1,256,64,64]."""
    embedding: npt.NDArray[np.float32] = np.load(io.BytesIO(data), allow_pickle=False).astype(np.float32)
    return embedding


def existing_rles(
    conn: Connection, image_id: int, statuses: Iterable[str] = ("accepted", "proposed")
) -> list[dict[str, Any]]:
    """Compressed RLEs of the image's annotations with the given statuses."""
    return dataset.mask_rles(conn, image_id, tuple(statuses))


def without_duplicates(
    generated: list[dict[str, Any]], existing: list[dict[str, Any]], threshold: float = DUPLICATE_IOU
) -> list[dict[str, Any]]:
    """The generated masks (COCO RLE dicts, counts str) that overlap no existing mask at IoU ≥ threshold."""
    if not generated or not existing:
        return generated
    rles = [{"size": g["segmentation"]["size"], "counts": g["segmentation"]["counts"].encode()} for g in generated]
    ious = mask_utils.iou(rles, existing, [0] * len(existing))
    return [g for g, row in zip(generated, np.atleast_2d(ious)) if row.max() < threshold]


@dataclass
class StageRun:
    """What one image's run stored."""

    image_id: int
    generated: int
    stored: list[int]


class MaskStage:
    """Generates and stores automatic masks for images of one store.

    Arguments:
      generator: the ``AutomaticMaskGenerator`` (model version and settings; ``ModelService.generator``).
      model_id: recorded on every stored annotation.
      stage / status: ``semi`` + ``proposed``, or ``auto`` + ``accepted``.
      model_version: the fine-tuned version whose decoder the generator runs (recorded too).
    """

    def __init__(
        self,
        generator: AutomaticMaskGenerator,
        model_id: str,
        stage: str = "semi",
        status: str = "proposed",
        model_version: str = "base",
    ) -> None:
        self.generator = generator
        self.model_id, self.stage, self.status = model_id, stage, status
        self.model_version = model_version

    def run_image(
        self,
        conn: Connection,
        image_id: int,
        image: npt.NDArray[np.uint8],
        embedding: npt.NDArray[np.float32],
        category_id: int,
    ) -> StageRun:
        """Generate masks for one image and store the new ones in one transaction."""
        return self.store(conn, image_id, self.generator.generate(image, embedding), category_id)

    def store(self, conn: Connection, image_id: int, generated: list[dict[str, Any]], category_id: int) -> StageRun:
        """Store an image's generated masks; see ``store_generated``."""
        return store_generated(
            conn, image_id, generated, category_id, self.stage, self.status, self.model_id, self.model_version
        )


def store_generated(
    conn: Connection,
    image_id: int,
    generated: list[dict[str, Any]],
    category_id: int,
    stage: str,
    status: str,
    model_id: str,
    model_version: str = "base",
) -> StageRun:
    """Store an image's generated masks (``AutomaticMaskGenerator.generate`` records) in one transaction,
    except those duplicating a mask already on the image. ``model_version``: whose decoder made them."""
    from maskloop.server.store.annotations import insert_annotation
    from maskloop.server.store.db import transaction

    # Proposals dedupe against pending proposals too (re-running propose adds nothing new);
    # the automatic stage labels everything not already accepted.
    against = ("accepted", "proposed") if status == "proposed" else ("accepted",)
    fresh = without_duplicates(generated, existing_rles(conn, image_id, against))
    stored = []
    with transaction(conn):
        for mask in fresh:
            stored.append(
                insert_annotation(
                    conn,
                    image_id,
                    category_id,
                    mask["segmentation"],
                    stage=stage,
                    status=status,
                    predicted_iou=float(mask["predicted_iou"]),
                    stability_score=float(mask["stability_score"]),
                    model=model_id,
                    model_version=model_version,
                    prompts={"point": [float(v) for v in mask["point_coords"][0]]},
                )
            )
    return StageRun(image_id, len(generated), stored)


def run_stage(
    stage: MaskStage,
    conn: Connection,
    images: list[Row],
    data_dir: Path,
    embedding_of: Callable[[Row, Path], npt.NDArray[np.float32]],
    category_id: int,
    progress: Callable[[list[Row]], Iterable[Row]] = lambda it: it,
) -> list[StageRun]:
    """Run ``stage`` over ``images`` (rows of the image table), committing after each image."""
    from maskloop.exporter.embedding import load_image_rgb

    runs = []
    for row in progress(images):
        path = data_dir / row["file_name"]
        image = load_image_rgb(path)
        runs.append(stage.run_image(conn, int(row["id"]), image, embedding_of(row, path), category_id))
    return runs
