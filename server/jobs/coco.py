"""COCO JSON out of and into the annotation store.

Export: ids are the store's ids (they start at 1 and never get reused); ``area`` and
``bbox`` come from the mask with pycocotools; ``iscrowd`` is 0; RLE ``counts`` are strings.

Polygon export rule (COCO polygons cannot hold holes: pycocotools unions every ring):
  * a mask without holes becomes one polygon per connected part (8-connected), traced along
    the pixel edges (vertices on pixel corners), so ``annToMask`` gives back exactly the
    stored mask when the tolerance is 0;
  * a mask with a hole stays RLE (so nothing is filled in silently);
  * ``tolerance`` > 0 simplifies each ring (Douglas-Peucker, in pixels); rings left with fewer
    than 3 points are dropped, and a mask with no ring left stays RLE;
  * ``area``/``bbox`` of a polygon annotation are those of the polygons as pycocotools draws them.

Import: images are matched by ``file_name`` (also by base name when that is unique in the
data folder); categories by name (created when new); polygons, compressed and uncompressed
RLE are accepted. Everything is checked before anything is written, and written in one
transaction. An annotation the store already holds (same image, same canonical RLE, same
category name, whatever its status) is skipped, so importing a file again is a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as mask_utils

from maskloop import __version__, masks, validate
from maskloop.errors import UserError
from maskloop.server.jobs.polygons import simplified, traced_rings
from maskloop.server.store import dataset, ratings
from maskloop.server.store.annotations import STATUSES, insert_annotation
from maskloop.server.store.categories import ensure_category
from maskloop.server.store.db import Connection, Row, transaction

#: Review filters of an export.
REVIEWS = ("reviewed", "rejected", "unreviewed")

FORMATS = ("rle", "polygon")
#: Largest polygon simplification tolerance, in pixels (beyond it every ring collapses anyway).
MAX_TOLERANCE = 10_000.0


# -- polygons --------------------------------------------------------------------------------
def mask_to_polygons(mask: npt.NDArray[np.uint8], tolerance: float = 0.0) -> list[list[float]] | None:
    """HxW mask -> COCO polygons with vertices on pixel corners (``polygons.traced_rings``), or
    None when it must stay RLE: a mask with a hole, or one whose rings all vanish when simplified.
    """
    traced = traced_rings(mask)
    if not traced or any(hole for _, hole in traced):
        return None
    polygons = [flat for points, _ in traced if (flat := simplified(points, tolerance)) is not None]
    return polygons or None


# -- export ----------------------------------------------------------------------------------
def export_coco(
    conn: Connection,
    fmt: str = "rle",
    tolerance: float = 0.0,
    statuses: Iterable[str] = ("accepted",),
    progress: bool = False,
    stages: Iterable[str] | None = None,
    review: str | None = None,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """The store as a COCO dict.

    Arguments:
      fmt: ``rle`` (exact) or ``polygon`` (see the module's rule for holes).
      tolerance: polygon simplification in pixels (0 = exact outline).
      statuses: which annotations to include (default: accepted only).
      stages: only annotations of these stages (default: every stage).
      review: only ``reviewed``, ``rejected`` or ``unreviewed`` annotations (default: any).
      data_dir: the images; given, a TIFF's pixel size goes into its image record (``pixel_size``).
    Returns:
      {"info", "licenses", "images", "annotations", "categories"}; images are every usable image
      in the folder plus any image an exported annotation is on.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}: use rle or polygon")
    validate.number(tolerance, "tolerance", 0.0, MAX_TOLERANCE)
    statuses = tuple(statuses)
    bad = [s for s in statuses if s not in STATUSES]
    if bad or not statuses:
        raise UserError(f"unknown annotation status {bad[0] if bad else ''!r}: use accepted, proposed, rejected or all")
    if review is not None and review not in REVIEWS:
        raise UserError(f"unknown review status {review!r}: use {', '.join(REVIEWS)}")
    rows = dataset.annotations_with_people(conn, statuses, review)
    if stages is not None:
        rows = [r for r in rows if r["stage"] in tuple(stages)]
    on_images = {r["image_id"] for r in rows}
    images = [
        {"id": r["id"], "file_name": r["file_name"], "width": r["width"], "height": r["height"]}
        for r in dataset.image_sizes(conn)
        if r["width"] is not None and ((not r["missing"] and not r["error"]) or r["id"] in on_images)
    ]
    if data_dir is not None:
        from maskloop.server.jobs.pixel_size import tiff_pixel_size

        for image in images:
            size = tiff_pixel_size(data_dir / image["file_name"])
            if size is not None:
                image["pixel_size"] = size
    categories = [
        {"id": r["id"], "name": r["name"], "supercategory": r["supercategory"] or "", "color": r["color"]}
        for r in dataset.categories(conn)
    ]
    from tqdm import tqdm

    rated = ratings.ratings_by_annotation(conn)
    annotations = [
        _export_annotation(r, fmt, tolerance, rated.get(r["id"]))
        for r in tqdm(rows, desc="exporting", unit="mask", disable=not progress or len(rows) < 200)
    ]
    return {
        "info": {
            "description": "exported by maskloop",
            "version": __version__,
            "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def _export_annotation(
    row: Row, fmt: str, tolerance: float, rated: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One COCO annotation; ``rated``: its 1..10 ratings (``{"rating", "rater", "rated"}``), exported as
    the extra field ``ratings`` when there are any."""
    rle = {"size": [row["rle_height"], row["rle_width"]], "counts": row["rle_counts"]}
    segmentation: Any = rle
    area, bbox = row["area"], json.loads(row["bbox"])
    if fmt == "polygon":
        polygons = mask_to_polygons(masks.decode(rle), tolerance)
        if polygons is not None:
            segmentation = polygons
            if tolerance > 0:
                drawn = mask_utils.merge(mask_utils.frPyObjects(polygons, row["rle_height"], row["rle_width"]))
                area, bbox = int(mask_utils.area(drawn)), [float(v) for v in mask_utils.toBbox(drawn)]
    out = {
        "id": row["id"],
        "image_id": row["image_id"],
        "category_id": row["category_id"],
        "segmentation": segmentation,
        "area": area,
        "bbox": bbox,
        "iscrowd": 0,
    }
    for score in ("predicted_iou", "stability_score"):  # SA-1B style, for automatic masks
        if row[score] is not None:
            out[score] = row[score]
    if row["model_version"] is not None:  # provenance: the model version that produced the mask
        out["model_version"] = row["model_version"]
    out.update(_provenance(row))
    for key in ("author", "editor", "reviewer", "review", "review_reason"):  # provenance and review, with accounts
        if row[key] is not None:
            out[key] = row[key]
    if rated:
        out["ratings"] = rated
    return out


def _provenance(row: Row) -> dict[str, Any]:
    """How a person made the mask, for a reviewer and the training loop: ``{"provenance": {stage,
    clicks, seconds, hand_edited, prompts}}``, where ``prompts`` holds the page's points, box,
    candidate and its hand ``edits`` in order (brush / eraser strokes: mode, radius and points in
    image pixels; clean-ups: mode and ``min_px``), and ``hand_edited`` says whether there are any.
    Empty for a mask with no record of its making."""
    prompts = json.loads(row["prompts"]) if row["prompts"] else None
    if prompts is None and row["clicks"] is None:
        return {}
    edits = prompts.get("edits") if isinstance(prompts, dict) else None
    return {
        "provenance": {
            "stage": row["stage"],
            "clicks": row["clicks"],
            "seconds": row["seconds"],
            "hand_edited": bool(edits),
            "prompts": prompts,
        }
    }


# -- import ----------------------------------------------------------------------------------
@dataclass
class ImportReport:
    """What an import did (or would do)."""

    annotations: int = 0
    categories_created: list[str] = field(default_factory=list)
    images_matched: int = 0
    images_not_found: list[str] = field(default_factory=list)
    annotations_skipped: int = 0  # on images not in the folder (``skip_missing_images``)
    annotations_already_stored: int = 0  # same image, RLE and category as one in the store
    ratings: int = 0  # 1..10 mask ratings read from the annotations' ``ratings`` field


def _ident(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def _ratings(value: object, where: str) -> list[dict[str, Any]]:
    """An annotation's ``ratings`` field as the export writes it: a list of ``{"rating": 1..10, "rater":
    name or null, "rated": time or null}``, at most one per rater (absent: no ratings). UserError otherwise."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise UserError(f'{where}: must be a list of {{"rating": 1..10, "rater", "rated"}}')
    seen: set[str] = set()
    for j, item in enumerate(value):
        rating = item.get("rating") if isinstance(item, dict) else None
        if type(rating) is not int or not ratings.LOWEST <= rating <= ratings.HIGHEST:
            raise UserError(f"{where}[{j}]: rating must be an integer from 1 to 10, got {validate.brief(rating)}")
        assert isinstance(item, dict)
        for key in ("rater", "rated"):
            if item.get(key) is not None:
                validate.text(item[key], f"{where}[{j}].{key}")
        rater = item.get("rater") or ""
        if rater in seen:
            raise UserError(f"{where}[{j}]: a second rating by {rater or 'the single user'!r}")
        seen.add(rater)
    return [dict(item) for item in value]


def _describe(index: int, ann: object) -> str:
    ident = ann.get("id") if isinstance(ann, dict) else None
    return f"annotations[{index}]" + (f" (id {validate.brief(ident)})" if ident is not None else "")


def import_coco(
    conn: Connection,
    coco: object,
    *,
    as_proposals: bool = False,
    skip_missing_images: bool = False,
    model: str | None = None,
) -> ImportReport:
    """Check every annotation of ``coco`` against the catalogue, then store them all in one transaction.

    An annotation whose image, canonical RLE and category (by name) match one the store held
    before this import is not stored again (``annotations_already_stored``).

    Raises:
      UserError: the first problem, naming the annotation by its index in the file (and how
        many more problems there are); nothing is written then.
    """
    if not isinstance(coco, dict):
        raise UserError("the COCO file must hold a JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key, []), list):
            raise UserError(f'the COCO file\'s "{key}" must be a list')
    coco_images, coco_anns, coco_cats = coco.get("images", []), coco.get("annotations", []), coco.get("categories", [])
    report = ImportReport()

    validate.json_tree(coco, "the COCO file")
    categories: dict[Any, dict[str, Any]] = {}
    names: dict[str, int] = {}
    for i, cat in enumerate(coco_cats):
        if (
            not isinstance(cat, dict)
            or not _ident(cat.get("id"))
            or not isinstance(cat.get("name"), str)
            or not cat["name"].strip()
        ):
            raise UserError(f"categories[{i}]: a category needs an id and a non-empty name")
        if cat["id"] in categories:
            raise UserError(f"categories[{i}]: category id {validate.brief(cat['id'])} appears twice")
        name = validate.text(cat["name"], f"categories[{i}].name").strip()
        if name in names:  # " dog " and "dog" would silently become one category
            raise UserError(
                f"categories[{i}]: the name {cat['name']!r} is the same as categories[{names[name]}]'s "
                "once surrounding spaces are removed"
            )
        names[name] = i
        if cat.get("supercategory") is not None:
            validate.text(cat["supercategory"], f"categories[{i}].supercategory")
        categories[cat["id"]] = cat

    catalog = {r["file_name"]: r for r in dataset.present_images(conn)}
    by_base: dict[str, list[Row]] = {}
    for name, image_row in catalog.items():
        by_base.setdefault(name.rsplit("/", 1)[-1], []).append(image_row)
    images: dict[Any, tuple[dict[str, Any], Row | None]] = {}
    for i, img in enumerate(coco_images):
        if not isinstance(img, dict) or not _ident(img.get("id")) or not isinstance(img.get("file_name"), str):
            raise UserError(f"images[{i}]: an image needs an id and a file_name")
        if img["id"] in images:
            raise UserError(f"images[{i}]: image id {validate.brief(img['id'])} appears twice")
        name = img["file_name"].replace("\\", "/").removeprefix("./")
        row = catalog.get(name)
        if row is None:
            same_base = by_base.get(name.rsplit("/", 1)[-1], [])
            row = same_base[0] if len(same_base) == 1 else None
        images[img["id"]] = (img, row)

    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    matched: set[int] = set()
    for i, ann in enumerate(coco_anns):
        where = _describe(i, ann)
        if not isinstance(ann, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        if not _ident(ann.get("image_id")) or ann["image_id"] not in images:
            problems.append(f"{where}: image_id {validate.brief(ann.get('image_id'))} is not in the file's images")
            continue
        if not _ident(ann.get("category_id")) or ann["category_id"] not in categories:
            problems.append(
                f"{where}: category_id {validate.brief(ann.get('category_id'))} is not in the file's categories"
            )
            continue
        img, row = images[ann["image_id"]]
        if row is None:
            if skip_missing_images:
                report.annotations_skipped += 1
                continue
            problems.append(f"{where}: image {img['file_name']!r} is not in the data folder (or --skip-missing-images)")
            continue
        if row["error"]:
            problems.append(f"{where}: image {row['file_name']!r} cannot be used: {row['error']}")
            continue
        height, width = row["height"], row["width"]
        if (img.get("height"), img.get("width")) not in ((height, width), (None, None)):
            problems.append(
                f"{where}: the file says image {img['file_name']!r} is {validate.brief(img.get('width'))}x"
                f"{validate.brief(img.get('height'))} (w x h), "
                f"but it is {width}x{height} as shown (EXIF orientation applied)"
            )
            continue
        if "segmentation" not in ann or ann["segmentation"] in (None, [], {}):
            problems.append(f"{where}: no segmentation (for boxes only, use maskloop boxes-to-masks)")
            continue
        try:
            rle = masks.coco_segmentation_to_rle(ann["segmentation"], height, width)
        except masks.MaskError as exc:
            problems.append(f"{where}: {exc}")
            continue
        try:
            rated = _ratings(ann.get("ratings"), f"{where}.ratings")
        except UserError as exc:
            problems.append(str(exc))
            continue
        matched.add(row["id"])
        rows.append({"image_id": row["id"], "category": categories[ann["category_id"]], "rle": rle, "ratings": rated})
    if problems:
        more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
        raise UserError(f"nothing imported: {problems[0]}{more}")

    report.images_matched = len(matched)
    report.images_not_found = sorted({img["file_name"] for img, row in images.values() if row is None})
    status = "proposed" if as_proposals else "accepted"
    with transaction(conn):
        existing = {r["name"] for r in dataset.categories(conn)}
        category_ids: dict[Any, int] = {}
        for cid, cat in categories.items():
            name = cat["name"].strip()
            if name not in existing:
                existing.add(name)
                report.categories_created.append(name)
            category_ids[cid] = ensure_category(conn, name, supercategory=cat.get("supercategory") or None)
        new_rows: list[tuple[int, int, dict[str, Any], list[dict[str, Any]]]] = []
        for r in rows:  # checked before anything is inserted: the file's own repeats are kept
            category_id = category_ids[r["category"]["id"]]
            if dataset.holds_mask(conn, r["image_id"], category_id, r["rle"]):
                report.annotations_already_stored += 1
            else:
                new_rows.append((r["image_id"], category_id, r["rle"], r["ratings"]))
        for image_id, category_id, rle, rated in new_rows:
            new_id = insert_annotation(conn, image_id, category_id, rle, stage="import", status=status, model=model)
            for item in rated:
                rater = item.get("rater") or ratings.SINGLE_USER
                rater_id = ratings.account_id(conn, rater) if rater else None
                ratings.set_rating(conn, new_id, item["rating"], rater, rater_id, item.get("rated"))
                report.ratings += 1
    report.annotations = len(new_rows)
    return report
