"""The automatic mask generator's settings, apart from the generator: the command line reads their
defaults to build its parser without importing torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GeneratorSettings:
    """SAM's defaults (points_per_side 32, pred IoU 0.88, stability 0.95, NMS 0.7)."""

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0
    #: maskloop's own: decode the grid coarse to fine and skip points the coarser ones explain
    #: (``engine/coverage.py``); False decodes every point, as SAM does.
    skip_covered_points: bool = True
