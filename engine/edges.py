"""Zero-shot edge maps (the SAM paper's edge-detection experiment, section 7.2).

Recipe: prompt a grid of foreground points (16×16 by default), three masks per point; drop
redundant masks with box NMS (boxes of the low-res masks, scored by predicted IoU); upsample the
kept masks' logits to the image and take their unthresholded probabilities (sigmoid); Sobel
(OpenCV) each probability map, combine by taking at every pixel the strongest response (with its
direction); thin with the standard edge non-maximum suppression (a pixel stays when it is not
weaker than its two neighbours across the edge, the direction quantised to 0/45/90/135°); scale
to 0..255 (the outermost 2 px, where masks that reach the image's border fade, are left at 0).
Everything is in the image frame (HxW as shown) except the low-res 256×256 logits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from segment_anything.utils.amg import build_all_layer_point_grids
from segment_anything.utils.transforms import ResizeLongestSide
from torchvision.ops import batched_nms

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Points decoded at once.
BATCH = 64
#: Pixels along the image's border that are never edges (see ``edge_map``).
BORDER = 2
#: Low-res masks' box IoU above which the lower-scored one is dropped (SAM's generator's default).
NMS_THRESH = 0.7


@torch.inference_mode()
def grid_logits(
    model: Sam, embedding: np.ndarray, image_hw: tuple[int, int], points_per_side: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-res logits [N,256,256] (SAM's frame: the image resized to the model's input, padded) and
    predicted IoU [N] of the 3 masks of every point of a ``points_per_side``² grid, for ``embedding``
    [1,256,64,64]."""
    h, w = image_hw
    size = int(model.image_encoder.img_size)
    transform = ResizeLongestSide(size)
    grid = build_all_layer_point_grids(points_per_side, 0, 1)[0] * np.array([w, h])[None]
    coords = transform.apply_coords(grid, (h, w)).astype(np.float32)  # XY model-input pixels
    device = next(model.mask_decoder.parameters()).device
    image_embedding = torch.as_tensor(np.asarray(embedding, np.float32), device=device)
    pe = model.prompt_encoder.get_dense_pe()
    logits, scores = [], []
    for start in range(0, len(coords), BATCH):
        points = torch.as_tensor(coords[start : start + BATCH], device=device)[:, None, :]
        labels = torch.ones(points.shape[:2], dtype=torch.int, device=device)
        sparse, dense = model.prompt_encoder(points=(points, labels), boxes=None, masks=None)
        low, iou = model.mask_decoder(
            image_embeddings=image_embedding,
            image_pe=pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )
        logits.append(low.flatten(0, 1))
        scores.append(iou.flatten())
    return torch.cat(logits).float().cpu(), torch.cat(scores).float().cpu()


def kept_masks(logits: torch.Tensor, scores: torch.Tensor, nms_thresh: float = NMS_THRESH) -> torch.Tensor:
    """Indices of the masks (logits [N,h,w]) that box NMS keeps, best score first; empty masks dropped."""
    binary = logits > 0
    nonempty = binary.flatten(1).any(1)
    idx = torch.nonzero(nonempty).flatten()
    if not len(idx):
        return idx
    rows, cols = binary[idx].any(2), binary[idx].any(1)
    r = torch.arange(binary.shape[1])
    c = torch.arange(binary.shape[2])
    big = 10**6
    y0 = torch.where(rows, r, big).min(1).values
    y1 = torch.where(rows, r, -1).max(1).values + 1
    x0 = torch.where(cols, c, big).min(1).values
    x1 = torch.where(cols, c, -1).max(1).values + 1
    boxes = torch.stack([x0, y0, x1, y1], 1).float()
    keep = batched_nms(boxes, scores[idx], torch.zeros(len(idx)), nms_thresh)
    return idx[keep]


def thin(magnitude: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Edge non-maximum suppression: ``magnitude`` (HxW float) where it is not weaker than both
    neighbours along the gradient (``gx``, ``gy``, same shape), 0 elsewhere."""
    angle = np.rad2deg(np.arctan2(gy, gx)) % 180.0
    sector = (((angle + 22.5) // 45).astype(np.int64)) % 4  # 0: across x, 1: 45°, 2: across y, 3: 135°
    h, w = magnitude.shape
    padded = np.pad(magnitude, 1)
    keep = np.zeros((h, w), bool)
    for k, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        ahead = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        behind = padded[1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
        keep |= (sector == k) & (magnitude >= ahead) & (magnitude >= behind)
    return np.where(keep, magnitude, 0.0)


def edge_map(model: Sam, embedding: np.ndarray, image_hw: tuple[int, int], points_per_side: int = 16) -> np.ndarray:
    """The image's edge map, HxW uint8 0..255 (``image_hw`` = (H, W) as shown), by the module's recipe."""
    h, w = image_hw
    size = int(model.image_encoder.img_size)
    input_hw = ResizeLongestSide(size).get_preprocess_shape(h, w, size)
    logits, scores = grid_logits(model, embedding, image_hw, points_per_side)
    low = logits.shape[-1]
    rows, cols = -(-input_hw[0] * low // size), -(-input_hw[1] * low // size)  # cells that cover the image
    best = np.zeros((h, w), np.float32)
    best_gx = np.zeros((h, w), np.float32)
    best_gy = np.zeros((h, w), np.float32)
    for i in kept_masks(logits[:, :rows, :cols], scores).tolist():
        with torch.inference_mode():  # SAM's own upsampling: 256 -> 1024, crop the padding, resize to the image
            up = model.postprocess_masks(logits[i][None, None].to(model.device), input_hw, (h, w))[0, 0].cpu().numpy()
        probability = 0.5 * (1.0 + np.tanh(0.5 * up))  # the sigmoid, without overflow
        gx = cv2.Sobel(probability, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(probability, cv2.CV_32F, 0, 1, ksize=3)
        magnitude = np.hypot(gx, gy)
        stronger = magnitude > best
        best = np.where(stronger, magnitude, best)
        best_gx = np.where(stronger, gx, best_gx)
        best_gy = np.where(stronger, gy, best_gy)
    thinned = thin(best, best_gx, best_gy)
    # Masks of regions that reach the image's border fade there (their logits are upsampled from 4 px
    # cells): the border itself is not an edge, so the outermost BORDER px are left out.
    thinned[:BORDER], thinned[-BORDER:], thinned[:, :BORDER], thinned[:, -BORDER:] = 0, 0, 0, 0
    top = float(thinned.max())
    if top <= 0:
        return np.zeros((h, w), np.uint8)
    return np.clip(np.round(thinned / top * 255.0), 0, 255).astype(np.uint8)
