"""The store as a training data set folder: Ultralytics YOLO segmentation (``yolo-seg``) or PASCAL VOC (``voc``).

Both are made from the store's COCO export (``coco.export_coco``, exact RLE): the same images,
annotations (statuses, review filter) and categories, in the same order, so a category's class is
its place in the COCO export's ``categories`` (YOLO: 0-based; VOC: 1-based, 0 is background).

Layout (``<name>`` is the image's export name, ``<ext>`` its original suffix):

  yolo-seg: ``data.yaml``, ``images/<name><ext>``, ``labels/<name>.txt`` (see ``yolo_seg.py``)
  voc:      ``labels.txt``, ``JPEGImages/<name><ext>``, ``SegmentationClass/<name>.png``,
            ``SegmentationObject/<name>.png``, ``ImageSets/Segmentation/default.txt`` (see ``voc.py``)

Every image of the COCO export is in the data set, with or without masks (an empty label file, an
all-background PNG). Images are copied as they are; masks are in the orientation the image is
shown in (EXIF applied), as ``cv2.imread`` and Ultralytics read them.

Export names: an image's file stem (``a/b/cat.jpg`` -> ``cat``). Images whose stems are equal
(case ignored) in different sub-folders get their folder path joined with ``__`` instead
(``train/0001.jpg`` -> ``train__0001``, ``val/0001.jpg`` -> ``val__0001``), so no file silently
overwrites another; a clash even then (``x.jpg`` and ``x.png`` in one folder) is an error.
White space in a name becomes ``_`` (VOC's image set lists hold one name a line, and readers
split them at white space): ``my cat.jpg`` -> ``my_cat``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from maskloop import masks
from maskloop.errors import UserError
from maskloop.server.jobs import voc, yolo_seg
from maskloop.server.jobs.catalog import OutsideDataFolder, resolve_inside
from maskloop.server.jobs.coco import export_coco
from maskloop.server.jobs.export_sink import Sink, committed
from maskloop.server.store.db import Connection

#: Every format ``maskloop export`` writes; the ones after ``coco`` are folders (or zips over HTTP).
FORMATS = ("coco", "yolo-seg", "voc")
FOLDER_FORMATS = ("yolo-seg", "voc")


@dataclass
class DatasetReport:
    """What an export wrote: images, masks, and masks left out (too thin for a YOLO polygon)."""

    images: int = 0
    annotations: int = 0
    left_out: int = 0


def _no_space(name: str) -> str:
    return re.sub(r"\s", "_", name)


def export_names(file_names: Sequence[str]) -> dict[str, str]:
    """``file_name`` (relative, ``/``) -> a unique export name without suffix (see the module's rule).

    Raises:
      UserError: two images would still get the same name.
    """
    stems = {f: _no_space(PurePosixPath(f).stem) for f in file_names}
    count = Counter(stem.casefold() for stem in stems.values())
    names = {
        f: stem if count[stem.casefold()] == 1 else _no_space("__".join(PurePosixPath(f).with_suffix("").parts))
        for f, stem in stems.items()
    }
    seen: dict[str, str] = {}
    for f, name in names.items():
        other = seen.setdefault(name.casefold(), f)
        if other != f:
            raise UserError(f"images {other} and {f} would both be exported as {name!r}: rename one of them")
    return names


def image_sources(data_dir: Path, file_names: Iterable[str]) -> dict[str, Path]:
    """``file_name`` -> the image file to copy, checked now.

    Raises:
      UserError: an image is no longer in the data folder, or leads out of it.
    """
    sources = {}
    for f in file_names:
        try:
            path = resolve_inside(data_dir, f)
        except OutsideDataFolder as exc:
            raise UserError(f"cannot export image {f}: {exc}") from None
        if path is None:
            raise UserError(
                f"image {f} is no longer in the data folder {data_dir}: put it back, or let the folder be "
                "scanned again to leave it out (its masks stay in the store)"
            )
        sources[f] = path
    return sources


def write_dataset(
    conn: Connection,
    data_dir: Path,
    fmt: str,
    sink: Sink,
    *,
    root: str | None = None,
    statuses: Iterable[str] = ("accepted",),
    review: str | None = None,
    tolerance: float = 0.0,
    progress: bool = False,
) -> DatasetReport:
    """Write the store as a ``fmt`` data set into ``sink``: all of it, or (on any error) nothing.

    Arguments:
      data_dir: the folder the images are copied from.
      root: ``data.yaml``'s ``path`` (yolo-seg; None: the folder holding ``data.yaml``).
      statuses, review: which annotations, as ``export_coco`` takes them.
      tolerance: YOLO polygon simplification in pixels (0: every contour vertex).
    Raises:
      UserError: an unknown format or filter, a vanished image, names that clash, or a data set
        the format cannot hold (VOC: over 254 categories or masks on one image).
    """
    with committed(sink):  # whatever fails, from here on, leaves nothing behind
        return _write(conn, data_dir, fmt, sink, root, statuses, review, tolerance, progress)


def _write(
    conn: Connection,
    data_dir: Path,
    fmt: str,
    sink: Sink,
    root: str | None,
    statuses: Iterable[str],
    review: str | None,
    tolerance: float,
    progress: bool,
) -> DatasetReport:
    if fmt not in FOLDER_FORMATS:
        raise UserError(f"unknown data set format {fmt!r}: use {', '.join(FOLDER_FORMATS)}")
    coco = export_coco(conn, "rle", 0.0, statuses, review=review)
    images: list[dict[str, Any]] = coco["images"]
    names = export_names([img["file_name"] for img in images])
    sources = image_sources(data_dir, names)
    class_of = {cat["id"]: i for i, cat in enumerate(coco["categories"])}
    category_names = [cat["name"] for cat in coco["categories"]]
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann)
    report = DatasetReport(len(images), len(coco["annotations"]))
    from tqdm import tqdm

    if fmt == "yolo-seg":
        sink.write("data.yaml", yolo_seg.data_yaml(category_names, root).encode())
    else:
        sink.write("labels.txt", voc.labels_txt(category_names).encode())
    for img in tqdm(images, desc=f"exporting {fmt}", unit="image", disable=not progress or len(images) < 20):
        name, anns = names[img["file_name"]], by_image[img["id"]]
        if fmt == "yolo-seg":
            report.left_out += _yolo_labels(sink, name, anns, class_of, tolerance)
        else:
            _voc_labels(sink, name, img, anns, class_of)
        relpath = f"{'images' if fmt == 'yolo-seg' else 'JPEGImages'}/{name}{PurePosixPath(img['file_name']).suffix}"
        try:
            sink.add_file(relpath, sources[img["file_name"]])
        except FileNotFoundError:
            raise UserError(f"image {img['file_name']} vanished from the data folder during the export") from None
    if fmt == "voc":
        sink.write("ImageSets/Segmentation/default.txt", "".join(f"{names[i['file_name']]}\n" for i in images).encode())
    return report


def _yolo_labels(
    sink: Sink, name: str, anns: Sequence[dict[str, Any]], class_of: dict[int, int], tolerance: float
) -> int:
    """Write ``labels/<name>.txt`` (empty when the image has no mask); returns how many masks gave no line."""
    lines, left_out = [], 0
    for ann in anns:
        mine = yolo_seg.label_lines(masks.decode(ann["segmentation"]), class_of[ann["category_id"]], tolerance)
        left_out += not mine
        lines += mine
    sink.write(f"labels/{name}.txt", "".join(f"{line}\n" for line in lines).encode())
    return left_out


def _voc_labels(
    sink: Sink, name: str, img: dict[str, Any], anns: Sequence[dict[str, Any]], class_of: dict[int, int]
) -> None:
    """Write ``SegmentationClass/<name>.png`` and ``SegmentationObject/<name>.png`` (classes 1-based)."""
    instances = [voc.Instance(a["id"], class_of[a["category_id"]] + 1, int(a["area"]), a["segmentation"]) for a in anns]
    classes, objects = voc.label_maps(img["height"], img["width"], instances, img["file_name"])
    sink.write(f"SegmentationClass/{name}.png", voc.png_bytes(classes))
    sink.write(f"SegmentationObject/{name}.png", voc.png_bytes(objects))
