"""Mask measurements on the decoder's 256x256 low-res logits, before any upsampling.

The decoder's ``low_res_logits`` [N,256,256] cover the padded 1024x1024 model input at 4 px per
cell; the image occupies the top-left ``input_hw`` (long side 1024) of it. SAM's postprocess
upsamples bilinearly (1024x1024, crop to ``input_hw``, then to the image size), which keeps the
zero crossings where they are, so areas and extents measured here match the full-resolution mask
to within a fraction of a cell. That is what lets the generator filter and suppress thousands of
candidates at 1/16 of the pixels and upsample only the masks it keeps.
"""

from __future__ import annotations

import math

import torch

LOW_RES = 256
CELL = 4  # model-input pixels per low-res cell (1024 / 256)


def valid_cells(input_hw: tuple[int, int]) -> tuple[int, int]:
    """Low-res rows and columns that cover the image (not the padding) for a ``input_hw`` model input."""
    return math.ceil(input_hw[0] / CELL), math.ceil(input_hw[1] / CELL)


def stability_score(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """SAM's stability score (IoU of the masks at ``threshold ± offset``) of [N,h,w] logits -> [N]."""
    high = (logits > threshold + offset).flatten(1).sum(1, dtype=torch.int32)
    low = (logits > threshold - offset).flatten(1).sum(1, dtype=torch.int32)
    return high / low.clamp(min=1)


def _crossings(profile: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last sub-cell positions (cell centres at 0, 1, ...) where ``profile`` [N,L] is above threshold.

    The edge is placed where the linear interpolation between the outside and the inside cell
    crosses ``threshold`` (what bilinear upsampling does); a profile entirely above gives 0 / L-1
    minus / plus half a cell.
    """
    inside = profile > threshold
    n, length = profile.shape
    idx = torch.arange(length, device=profile.device)
    first = torch.where(inside, idx, length).min(1).values.clamp(max=length - 1)
    last = torch.where(inside, idx, -1).max(1).values.clamp(min=0)
    rows = torch.arange(n, device=profile.device)

    def edge(at: torch.Tensor, step: int) -> torch.Tensor:
        outside = at - step
        has_outside = (outside >= 0) & (outside < length)
        v_in = profile[rows, at]
        v_out = profile[rows, outside.clamp(0, length - 1)]
        frac = ((v_in - threshold) / (v_in - v_out).clamp(min=1e-6)).clamp(0, 1)
        return torch.where(has_outside, at - step * frac, at - step * 0.5)

    return edge(first, 1), edge(last, -1)


def boxes_xyxy(
    logits: torch.Tensor, threshold: float, input_hw: tuple[int, int], out_hw: tuple[int, int]
) -> torch.Tensor:
    """Boxes [N,4] (x0, y0, x1, y1, inclusive pixel indices of ``out_hw``) of the masks ``logits > threshold``.

    Arguments:
      logits: [N,h,w] low-res logits cut to ``valid_cells(input_hw)``.
      input_hw: the model-input size of the image (long side 1024).
      out_hw: the size of the image the boxes are for (the crop that was embedded).
    Returns:
      float boxes in ``out_hw`` pixels; an empty mask gives a degenerate box.
    """
    x0, x1 = _crossings(logits.amax(1), threshold)
    y0, y1 = _crossings(logits.amax(2), threshold)
    sx, sy = out_hw[1] / input_hw[1], out_hw[0] / input_hw[0]

    def to_out(cell: torch.Tensor, scale: float, size: int, end: bool) -> torch.Tensor:
        # Cell position p is model-input coordinate CELL * (p + 0.5) (align_corners=False), which
        # scales linearly to the output; the last pixel inside a right/bottom edge e is e - 1.
        edge = CELL * (cell + 0.5) * scale
        return (edge - 1 if end else edge).clamp(0, size - 1)

    return torch.stack(
        [
            to_out(x0, sx, out_hw[1], False),
            to_out(y0, sy, out_hw[0], False),
            to_out(x1, sx, out_hw[1], True),
            to_out(y1, sy, out_hw[0], True),
        ],
        dim=1,
    )
