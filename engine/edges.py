"""Zero-shot edge maps from SAM, the SAM paper's recipe (section 7.1): prompt a grid of foreground
points, keep the masks box NMS leaves, take their unthresholded mask probability maps, Sobel-filter
them, combine the responses (per pixel, the strongest), thin with edge non-maximum suppression
and scale to 0..255.

Frames: the grid and the probability maps are in image pixels (H x W, as the image is shown);
the decoder works on the embedding's model-input frame (long side 1024) and its 256 x 256 low-res
logits, upsampled exactly as SAM's ``postprocess_masks`` does.

``boundary_recall`` measures a map against ground-truth object masks at a fixed pixel budget, the
benchmark ``bench/bench_edges.py`` runs for maskloop's maps and for OpenCV's Canny.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from segment_anything.utils.amg import build_all_layer_point_grids
from segment_anything.utils.transforms import ResizeLongestSide
from torchvision.ops import batched_nms

from maskloop.engine import lowres

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

    from maskloop.exporter.grid_decoder import GridDecoder
    from maskloop.exporter.grid_decoder_onnx import OnnxGridDecoder

#: Box IoU above which box NMS drops the lower-scored mask (the automatic generator's default).
NMS_THRESH = 0.7
#: Responses weaker than this share of the image's strongest are dropped (flat maps' noise).
FLOOR = 0.05
#: Masks upsampled to image size at once (bounds memory on large images).
CHUNK = 16


@dataclass
class EdgeSettings:
    points_per_side: int = 16
    nms_thresh: float = NMS_THRESH
    points_per_batch: int = 64


@torch.inference_mode()
def probability_maps(
    model: Sam,
    grid_decoder: GridDecoder | OnnxGridDecoder,
    embedding: np.ndarray,
    image_hw: tuple[int, int],
    settings: EdgeSettings | None = None,
) -> torch.Tensor:
    """The kept masks' probability maps [K,H,W] (sigmoid of SAM's upsampled logits, 0..1), image frame.

    Arguments:
      embedding: the image's [1,256,64,64] embedding.
      image_hw: (H, W) of the image the embedding was computed for.
    """
    s = settings or EdgeSettings()
    input_size = int(model.image_encoder.img_size)
    transform = ResizeLongestSide(input_size)
    input_hw = transform.get_preprocess_shape(image_hw[0], image_hw[1], input_size)
    rows, cols = lowres.valid_cells(input_hw)
    keep_rows, keep_cols = min(rows + 1, lowres.LOW_RES), min(cols + 1, lowres.LOW_RES)
    grid = build_all_layer_point_grids(s.points_per_side, 0, 1)[0]
    points = transform.apply_coords(grid * np.array(image_hw)[None, ::-1], image_hw)  # XY, model-input frame
    device = next(model.mask_decoder.parameters()).device
    prepared = grid_decoder.prepare(torch.as_tensor(np.asarray(embedding, np.float32), device=device), input_hw)
    logits, ious = [], []
    for start in range(0, len(points), s.points_per_batch):
        batch = torch.as_tensor(points[start : start + s.points_per_batch], dtype=torch.float, device=device)
        low, iou = grid_decoder(prepared, batch)
        logits.append(low.flatten(0, 1)[:, :keep_rows, :keep_cols].clone())
        ious.append(iou.flatten())
    logits_t, iou_t = torch.cat(logits), torch.cat(ious)
    threshold = float(model.mask_threshold)
    boxes = lowres.boxes_xyxy(logits_t[:, :rows, :cols], threshold, input_hw, image_hw)
    present = torch.nonzero((logits_t[:, :rows, :cols] > threshold).flatten(1).any(1)).flatten()
    kept = present[batched_nms(boxes[present], iou_t[present], torch.zeros_like(present), s.nms_thresh)]
    maps = []
    padded = torch.zeros(CHUNK, 1, lowres.LOW_RES, lowres.LOW_RES, device=device)
    for start in range(0, len(kept), CHUNK):
        part = logits_t[kept[start : start + CHUNK]]
        padded.zero_()
        padded[: len(part), 0, : part.shape[1], : part.shape[2]] = part
        maps.append(torch.sigmoid(model.postprocess_masks(padded[: len(part)], input_hw, image_hw)[:, 0]).cpu())
    if not maps:
        return torch.zeros(0, *image_hw)
    return torch.cat(maps)


def edge_strength(maps: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel the strongest Sobel response over the maps [K,H,W], and its gradient direction
    (radians); both H x W float32."""
    k, h, w = maps.shape
    strength = np.zeros((h, w), np.float32)
    direction = np.zeros((h, w), np.float32)
    for m in maps.numpy().astype(np.float32):
        gx = cv2.Sobel(m, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(m, cv2.CV_32F, 0, 1, ksize=3)
        magnitude = cv2.magnitude(gx, gy)
        stronger = magnitude > strength
        strength[stronger] = magnitude[stronger]
        direction[stronger] = np.arctan2(gy, gx)[stronger]
    return strength, direction


def thin(strength: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Edge non-maximum suppression: a pixel stays only where it is at least as strong as both
    neighbours across the edge (its gradient direction quantised to 0, 45, 90 or 135 degrees),
    as Canny's thinning step does (OpenCV and scikit-image expose it only inside their Canny)."""
    padded = np.pad(strength, 1)
    h, w = strength.shape
    angle = (np.rad2deg(direction) + 180.0) % 180.0
    sector = (((angle + 22.5) // 45) % 4).astype(np.int8)  # 0: horizontal gradient, 1: 45, 2: vertical, 3: 135
    offsets = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}
    keep = np.zeros((h, w), bool)
    for s, (dy, dx) in offsets.items():
        ahead = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        behind = padded[1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        keep |= (sector == s) & (strength >= ahead) & (strength >= behind)
    return np.where(keep, strength, 0.0).astype(np.float32)


def edge_map(
    model: Sam,
    grid_decoder: GridDecoder | OnnxGridDecoder,
    embedding: np.ndarray,
    image_hw: tuple[int, int],
    settings: EdgeSettings | None = None,
) -> np.ndarray:
    """The image's edge map: H x W uint8, 0 (no edge) .. 255 (the strongest edge of this image)."""
    strength, direction = edge_strength(probability_maps(model, grid_decoder, embedding, image_hw, settings))
    strength[strength < FLOOR * strength.max()] = 0.0  # the flat parts' rounding noise, not edges
    thinned = thin(strength, direction)
    top = float(thinned.max())
    if top <= 0:
        return np.zeros(image_hw, np.uint8)
    return np.clip(np.rint(thinned / top * 255.0), 0, 255).astype(np.uint8)


def object_boundaries(masks: list[np.ndarray]) -> np.ndarray:
    """H x W bool: the pixels on the boundary of any object mask (inside pixels with an outside
    4-neighbour), the ground truth the edge maps are measured against."""
    out: np.ndarray | None = None
    kernel = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
    for m in masks:
        m8 = m.astype(np.uint8)
        edge = m8.astype(bool) & ~cv2.erode(m8, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
        out = edge if out is None else out | edge
    if out is None:
        raise ValueError("no object masks")
    return out


def keep_strongest(score: np.ndarray, budget: int) -> np.ndarray:
    """H x W bool: the ``budget`` pixels with the highest positive ``score`` (ties broken by position)."""
    flat = score.ravel()
    budget = min(budget, int((flat > 0).sum()))
    kept = np.zeros(flat.shape, bool)
    if budget > 0:
        kept[np.argpartition(-flat, budget - 1)[:budget]] = True
    return kept.reshape(score.shape)


@dataclass
class BoundaryMatch:
    """Kept edge pixels against ground-truth boundary pixels, matched within ``tolerance`` pixels."""

    boundary_pixels: int
    boundary_found: int  # ground-truth boundary pixels with a kept edge pixel within the tolerance
    kept_pixels: int
    kept_on_boundary: int  # kept edge pixels with a ground-truth boundary pixel within the tolerance

    @property
    def recall(self) -> float:
        return self.boundary_found / max(1, self.boundary_pixels)

    @property
    def precision(self) -> float:
        return self.kept_on_boundary / max(1, self.kept_pixels)


def match(kept: np.ndarray, boundary: np.ndarray, tolerance: float = 3.0) -> BoundaryMatch:
    """Match kept edge pixels and boundary pixels (both H x W bool) within ``tolerance`` pixels (Euclidean)."""
    near_kept = cv2.distanceTransform((~kept).astype(np.uint8), cv2.DIST_L2, 5) <= tolerance
    near_boundary = cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, 5) <= tolerance
    return BoundaryMatch(
        int(boundary.sum()), int((boundary & near_kept).sum()), int(kept.sum()), int((kept & near_boundary).sum())
    )


def boundary_recall(
    score: np.ndarray, boundary: np.ndarray, budget_factor: float = 2.0, tolerance: float = 3.0
) -> BoundaryMatch:
    """Keep the strongest ``budget_factor`` x (boundary pixel count) pixels of ``score`` and match them."""
    return match(keep_strongest(score, int(budget_factor * boundary.sum())), boundary, tolerance)
