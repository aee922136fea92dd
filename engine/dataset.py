"""COCO files with images on disk: ground truth for evaluation, boxes for boxes-to-masks."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from maskloop.errors import UserError

if TYPE_CHECKING:
    from pycocotools.coco import COCO


def load_coco(path: str | Path) -> COCO:
    """A ``pycocotools.coco.COCO`` for ``path``; a clear error for a missing or malformed file."""
    from pycocotools.coco import COCO

    path = Path(path)
    if not path.is_file():
        raise UserError(f"COCO file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise UserError(f"{path} is not a COCO file (needs 'images' and 'annotations')")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco.createIndex()
    return coco


def resolve_image(images_dir: Path, file_name: str) -> Path:
    """The image a COCO ``file_name`` names: relative to ``images_dir``, else by base name."""
    for candidate in (images_dir / file_name, images_dir / Path(file_name).name):
        if candidate.is_file():
            return candidate
    raise UserError(f"image {file_name!r} of the COCO file not found under {images_dir}")


@dataclass
class GroundTruthImage:
    image_id: int
    path: Path
    masks: list[np.ndarray]  # HxW bool per annotation, in the COCO file's order
    annotation_ids: list[int]


def _masked_annotations(coco: COCO, image_id: int, skip: set[int]) -> list[dict]:
    """The image's annotations that count as ground truth: not crowd, not of a skipped category."""
    return [a for a in coco.imgToAnns.get(image_id, []) if not a.get("iscrowd") and a.get("category_id") not in skip]


def _skipped_categories(coco: COCO, names: tuple[str, ...]) -> set[int]:
    return {c["id"] for c in coco.dataset.get("categories", []) if c.get("name") in names}


def annotated_image_ids(coco: COCO, skip_category_names: tuple[str, ...] = ("_background_",)) -> list[int]:
    """Ids of the images ``iter_ground_truth`` yields (those with a ground-truth mask), ascending."""
    skip = _skipped_categories(coco, skip_category_names)
    return [i for i in sorted(coco.getImgIds()) if _masked_annotations(coco, i, skip)]


def iter_ground_truth(
    coco: COCO,
    images_dir: Path,
    skip_category_names: tuple[str, ...] = ("_background_",),
    image_ids: Iterable[int] | None = None,
) -> Iterator[GroundTruthImage]:
    """Per image: its path and the binary masks of its (non-crowd) annotations, by ascending id
    (``image_ids``: only these images, in that order; only their masks are decoded)."""
    skip = _skipped_categories(coco, skip_category_names)
    for image_id in sorted(coco.getImgIds()) if image_ids is None else image_ids:
        info = coco.imgs[image_id]
        anns = _masked_annotations(coco, image_id, skip)
        if not anns:
            continue
        masks = [coco.annToMask(a).astype(bool) for a in anns]
        yield GroundTruthImage(image_id, resolve_image(images_dir, info["file_name"]), masks, [a["id"] for a in anns])
