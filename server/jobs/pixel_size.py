"""The physical size of a pixel, from a TIFF's resolution tags (microscopy, aerial pictures).

The COCO export keeps it in the image record as ``"pixel_size": {"x", "y", "unit"}`` (the size
of one pixel along x and y in ``unit``), so that areas can be turned into µm² or m².
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_UNITS = {2: ("inch", 1.0), 3: ("cm", 1.0)}
_TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")


def tiff_pixel_size(path: Path) -> dict[str, Any] | None:
    """``{"x": float, "y": float, "unit": "µm" | "cm" | "inch"}`` of a TIFF's first page, or None
    (not a TIFF, no resolution tags, or resolution unit "none"). Reads the header only.

    ImageJ's TIFFs say ``unit=micron`` in their description with ResolutionUnit "none": taken as µm.
    """
    if path.suffix.lower() not in _TIFF_SUFFIXES:
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages.first.tags
            x_res, y_res = tags.get("XResolution"), tags.get("YResolution")
            if x_res is None or y_res is None:
                return None
            unit_tag = tags.get("ResolutionUnit")
            unit_code = int(unit_tag.value) if unit_tag is not None else 2
            imagej = tif.imagej_metadata or {}
    except (OSError, ValueError, tifffile.TiffFileError):
        return None
    per_x = x_res.value[0] / x_res.value[1] if x_res.value[1] else 0.0
    per_y = y_res.value[0] / y_res.value[1] if y_res.value[1] else 0.0
    if per_x <= 0 or per_y <= 0:
        return None
    if unit_code == 3:  # centimetre: give micrometres, the unit of slides and most aerial work
        return {"x": 1e4 / per_x, "y": 1e4 / per_y, "unit": "µm"}
    if unit_code == 2:
        return {"x": 1.0 / per_x, "y": 1.0 / per_y, "unit": "inch"}
    if str(imagej.get("unit", "")).lower() in ("micron", "um", "µm", "\\u00B5m"):
        return {"x": 1.0 / per_x, "y": 1.0 / per_y, "unit": "µm"}
    return None
