"""Masks as PASCAL VOC segmentation PNGs (``SegmentationClass``, ``SegmentationObject``).

Both PNGs are 8-bit palette images of the image's size (as shown, EXIF applied) with VOC's
colour map: in ``SegmentationClass`` a pixel holds its class (line number in ``labels.txt``:
0 background, 1 the first category, ...), in ``SegmentationObject`` its instance (1, 2, ... in
the order of the annotations' ids; 0 background). No 255 "void" border is written.

Overlaps: a VOC pixel has one owner. Masks are painted from the largest to the smallest (equal
areas: the older first), so where masks overlap the smaller one wins: an object in front of a
larger one (a cup on a table, a person on a sofa) keeps its pixels. Both PNGs use the same owner.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from maskloop import masks
from maskloop.errors import UserError

#: Values 1..254 can name a class or an instance; 255 is VOC's "void" and 0 the background.
MAX_LABEL = 254


@dataclass(frozen=True)
class Instance:
    """One mask of an image: its annotation ``id``, ``class_index`` (1-based), ``area`` in pixels and
    ``rle`` (COCO compressed RLE of the HxW image)."""

    id: int
    class_index: int
    area: int
    rle: dict[str, Any]


@cache
def palette() -> tuple[int, ...]:
    """VOC's 256-colour map as 768 RGB values (the devkit's ``VOClabelcolormap``: the bits of the
    index spread over the high bits of R, G and B); written out because no dependency ships it."""
    colours = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours += [r, g, b]
    return tuple(colours)


def labels_txt(names: Sequence[str]) -> str:
    """``labels.txt``: ``background`` then one category name a line (line number = class value).

    Raises:
      UserError: too many categories for an 8-bit PNG, or a name that would break the one-name-a-line file.
    """
    if len(names) > MAX_LABEL:
        raise UserError(f"{len(names)} categories: a VOC PNG holds at most {MAX_LABEL}; export coco or yolo-seg")
    for name in names:
        if "\n" in name or "\r" in name:
            raise UserError(f"category {name!r} has a line break, which labels.txt cannot hold: rename it")
    return "".join(f"{name}\n" for name in ["background", *names])


def label_maps(
    height: int, width: int, instances: Sequence[Instance], file_name: str
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """(class map, object map), each HxW uint8, of one image's instances (overlaps: see the module).

    Raises:
      UserError: more instances than an 8-bit object PNG can number.
    """
    if len(instances) > MAX_LABEL:
        raise UserError(
            f"image {file_name} has {len(instances)} masks: a VOC object PNG numbers at most {MAX_LABEL}; "
            "export coco or yolo-seg, or fewer masks (--status, --review)"
        )
    classes = np.zeros((height, width), np.uint8)
    objects = np.zeros((height, width), np.uint8)
    numbered = list(enumerate(sorted(instances, key=lambda inst: inst.id), start=1))
    for number, inst in sorted(numbered, key=lambda pair: (-pair[1].area, pair[1].id)):
        on = masks.decode(inst.rle).astype(bool)  # one mask decoded at a time: images can be large
        classes[on] = inst.class_index
        objects[on] = number
    return classes, objects


def png_bytes(labels: npt.NDArray[np.uint8]) -> bytes:
    """An HxW uint8 label map as a palette PNG with VOC's colours."""
    height, width = labels.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    image.putpalette(palette())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
