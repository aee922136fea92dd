"""Stages 2 and 3 on a folder's store: automatic masks as proposals (semi) or as labels (auto).

Both stages run ``AutomaticMaskGenerator`` on the cached embedding of each image (a large image,
``maskloop.tiles``: on each tile's cached embedding, merged by ``engine/tiled_auto.py``), drop masks
that duplicate a mask already on the image (IoU ≥ ``DUPLICATE_IOU``), and store the rest with
their predicted IoU and stability score: stage ``semi`` / status ``proposed`` for people to
accept, reject or refine; stage ``auto`` / status ``accepted`` when no person is involved.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

from maskloop.engine.automatic import AutomaticMaskGenerator
from maskloop.server.store import dataset
from maskloop.server.store.db import Connection, Row
from maskloop.tiles import Box, Tiling

#: (image row, its file, a region (x0, y0, x1, y1) image pixels) -> the region's embedding [1,256,64,64] float32.
RegionEmbeddingOf = Callable[[Row, Path, Box], npt.NDArray[np.float32]]

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
      tiling: which images are large and their tiles (default: the model's input size, threshold 2x that).
    """

    def __init__(
        self,
        generator: AutomaticMaskGenerator,
        model_id: str,
        stage: str = "semi",
        status: str = "proposed",
        model_version: str = "base",
        tiling: Tiling | None = None,
    ) -> None:
        self.generator = generator
        self.model_id, self.stage, self.status = model_id, stage, status
        self.model_version = model_version
        self.tiling = tiling or Tiling.for_model(generator.input_size)

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

    def run_tiled(
        self,
        conn: Connection,
        image_id: int,
        path: Path,
        image_hw: tuple[int, int],
        region_embedding: Callable[[Box], npt.NDArray[np.float32]],
        category_id: int,
        guard: AbstractContextManager[Any] | None = None,
    ) -> StageRun:
        """Generate a large image's masks (H, W) tile by tile from its file and the tiles' embeddings
        (``region_embedding``: a tile -> [1,256,64,64]); store the new ones in one transaction.
        ``guard`` is held around each tile's generation (``generate_tiled``)."""
        from maskloop.engine.tiled_auto import generate_tiled
        from maskloop.exporter.regions import read_region

        generated = generate_tiled(
            self.generator, image_hw, self.tiling, lambda region: read_region(path, region), region_embedding, guard
        )
        return self.store(conn, image_id, generated, category_id)

    def is_tiled(self, row: Row | dict[str, Any]) -> bool:
        """Whether an image row (``width``, ``height``) is large enough to be run tile by tile."""
        return bool(row["width"] and row["height"]) and self.tiling.is_tiled(int(row["width"]), int(row["height"]))

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


def _region_embedding(of: RegionEmbeddingOf, row: Row, path: Path, region: Box) -> npt.NDArray[np.float32]:
    return of(row, path, region)


def run_stage(
    stage: MaskStage,
    conn: Connection,
    images: list[Row],
    data_dir: Path,
    embedding_of: Callable[[Row, Path], npt.NDArray[np.float32]],
    category_id: int,
    progress: Callable[[list[Row]], Iterable[Row]] = lambda it: it,
    region_embedding_of: RegionEmbeddingOf | None = None,
) -> list[StageRun]:
    """Run ``stage`` over ``images`` (rows of the image table), committing after each image.

    A large image (``stage.is_tiled``) runs tile by tile on ``region_embedding_of``'s embeddings;
    without ``region_embedding_of`` every image runs on its whole embedding, as small ones do.
    """
    from maskloop.exporter.image_file import load_image_rgb

    runs = []
    for row in progress(images):
        path = data_dir / row["file_name"]
        if region_embedding_of is not None and stage.is_tiled(row):
            hw = (int(row["height"]), int(row["width"]))
            region_embedding = functools.partial(_region_embedding, region_embedding_of, row, path)
            runs.append(stage.run_tiled(conn, int(row["id"]), path, hw, region_embedding, category_id))
            continue
        image = load_image_rgb(path)
        runs.append(stage.run_image(conn, int(row["id"]), image, embedding_of(row, path), category_id))
    return runs
