"""Automatic mask generation (SAM's stage 3) on a cached embedding, filtering at low resolution.

Same settings, algorithm and output as segment-anything's ``SamAutomaticMaskGenerator`` (grid
of point prompts, three masks per point, predicted-IoU and stability filtering, box NMS, crop
zoom-ins, small-region removal), but every candidate is judged on the decoder's 256x256 low-res
logits: predicted IoU, stability score and the box used for NMS come from them
(``engine/lowres.py``; boxes whose NMS outcome is in doubt are settled at full resolution), and
only the masks NMS keeps are upsampled to image size and RLE-encoded. The official generator upsamples all ~3,000 candidates per crop first, so its cost
grows with the image size; this one's grows with the number of objects.

The model is an argument (its ``prompt_encoder``, ``mask_decoder``, ``postprocess_masks`` and
``mask_threshold`` are used), so a fine-tuned decoder generates with its own weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from pycocotools import mask as mask_utils
from segment_anything.utils.amg import (
    batched_mask_to_box,
    build_all_layer_point_grids,
    generate_crop_boxes,
    is_box_near_crop_edge,
    remove_small_regions,
)
from segment_anything.utils.transforms import ResizeLongestSide
from torchvision.ops import batched_nms, box_area, box_iou

from maskloop.engine import coverage, lowres
from maskloop.engine.generator_settings import GeneratorSettings
from maskloop.exporter.embedding import ImageEmbedder
from maskloop.exporter.grid_decoder import GridDecoder, PreparedImage

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

    from maskloop.exporter.grid_decoder_onnx import OnnxGridDecoder

#: Candidates whose low-res stability score is this close to the threshold are scored at full resolution.
STABILITY_MARGIN = 0.03
#: Candidates in a pair whose low-res box IoU is this close to the NMS threshold get their full-resolution box:
#: a faint sliver of low-res logits that upsampling erases moved a box edge by 23 px on astronaut.jpg (box IoU
#: 0.72 at low res, 0.61 at full) and NMS dropped one of SAM's masks.
BOX_MARGIN = 0.15
#: Points decoded at once: bounds the decoder's activations ([B,4096,256] floats per tensor) and keeps them in cache.
DECODE_BATCH = 16


@dataclass
class Candidates:
    """Masks of one crop that passed the filters, full-resolution in the image frame.

    rles: COCO RLEs (counts bytes) in the image frame; boxes [N,4] XYXY image pixels (inclusive,
    as SAM's ``batched_mask_to_box``); iou, stability [N]; points [N,2] XY image pixels; crop_boxes
    XYXY per mask.
    """

    rles: list[dict]
    boxes: torch.Tensor
    iou: torch.Tensor
    stability: torch.Tensor
    points: np.ndarray
    crop_boxes: list[list[int]] = field(default_factory=list)

    @staticmethod
    def cat(parts: list[Candidates]) -> Candidates:
        if not parts:
            return Candidates([], torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), np.zeros((0, 2)))
        return Candidates(
            [r for p in parts for r in p.rles],
            torch.cat([p.boxes for p in parts]),
            torch.cat([p.iou for p in parts]),
            torch.cat([p.stability for p in parts]),
            np.concatenate([p.points for p in parts]),
            [b for p in parts for b in p.crop_boxes],
        )

    def take(self, keep: torch.Tensor | np.ndarray) -> Candidates:
        keep = torch.as_tensor(keep, dtype=torch.long)
        idx = keep.numpy()
        return Candidates(
            [self.rles[i] for i in idx],
            self.boxes[keep],
            self.iou[keep],
            self.stability[keep],
            self.points[idx],
            [self.crop_boxes[i] for i in idx],
        )


def grid_decoder_for(model: Sam) -> GridDecoder | OnnxGridDecoder:
    """The grid decoder of ``model``: its ONNX graph on onnxruntime on a CPU (twice PyTorch's speed there),
    PyTorch elsewhere."""
    if next(model.mask_decoder.parameters()).device.type == "cpu":
        from maskloop.exporter.grid_decoder_onnx import OnnxGridDecoder

        return OnnxGridDecoder(model)
    return GridDecoder(model)


class AutomaticMaskGenerator:
    """Generate every object's mask in an image; results in SA-1B style (RLE, scores).

    Arguments:
      model: a SAM model (``Sam``); its prompt encoder and mask decoder decode the grid.
      embedder: embeds crops (the full image's embedding is passed to ``generate``).
      settings: the generator's thresholds; SAM's defaults if None.
    """

    def __init__(self, model: Sam, embedder: ImageEmbedder | None, settings: GeneratorSettings | None = None) -> None:
        self.model = model
        self.embedder = embedder
        self.settings = s = settings or GeneratorSettings()
        self.point_grids = build_all_layer_point_grids(
            s.points_per_side, s.crop_n_layers, s.crop_n_points_downscale_factor
        )
        self.input_size = int(model.image_encoder.img_size)
        self.transform = ResizeLongestSide(self.input_size)
        self.threshold = float(model.mask_threshold)
        self.grid_decoder = grid_decoder_for(model)
        self.points_skipped = 0
        self.boxes_settled = 0

    @property
    def device(self) -> torch.device:
        device: torch.device = next(self.model.mask_decoder.parameters()).device
        return device

    @torch.inference_mode()
    def generate(self, image: np.ndarray, embedding: np.ndarray | None = None) -> list[dict]:
        """Masks of ``image`` (HxWx3 uint8 RGB); ``embedding`` [1,256,64,64] of the full image if already computed.

        Returns:
          list of dicts: ``segmentation`` (COCO RLE, counts str), ``area``, ``bbox`` (XYWH),
          ``predicted_iou``, ``stability_score``, ``point_coords`` ([[x, y]] image pixels),
          ``crop_box`` (XYWH); sorted by predicted IoU, best first.
        """
        s = self.settings
        image_hw = image.shape[:2]
        crop_boxes, layers = generate_crop_boxes(image_hw, s.crop_n_layers, s.crop_overlap_ratio)
        parts = []
        self.points_skipped = 0  # grid points the coverage-aware sampling did not decode, this image
        self.boxes_settled = 0  # candidates whose NMS box was computed at full resolution, this image
        for crop_box, layer in zip(crop_boxes, layers):
            x0, y0, x1, y1 = crop_box
            crop = image[y0:y1, x0:x1]
            crop_embedding = embedding if layer == 0 and embedding is not None else self._embed(crop)
            parts.append(self._process_crop(crop_embedding, crop_box, layer, image_hw))
        found = Candidates.cat(parts)
        if len(crop_boxes) > 1 and len(found.iou):
            # Masks found in several crops: prefer the one from the smaller crop (as SAM does).
            scores = 1 / box_area(torch.tensor(found.crop_boxes, dtype=torch.float))
            found = found.take(batched_nms(found.boxes.float(), scores, torch.zeros(len(scores)), s.crop_nms_thresh))
        if s.min_mask_region_area > 0 and len(found.iou):
            found = self._remove_small_regions(found, s.min_mask_region_area, max(s.box_nms_thresh, s.crop_nms_thresh))
        return sorted(self._records(found), key=lambda m: -m["predicted_iou"])

    def _embed(self, crop: np.ndarray) -> np.ndarray:
        if self.embedder is None:
            raise ValueError("crop layers need an embedder to embed the crops; pass one to AutomaticMaskGenerator")
        return self.embedder.embed([crop])

    def _decode(self, image: PreparedImage, points_model: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points [B,2] (model-input frame) -> low-res logits [B,3,h,w] (the top-left of SAM's 256x256 that
        covers the image, plus a cell), predicted IoU [B,3]; ``DECODE_BATCH`` points at a time."""
        parts = [
            self.grid_decoder(image, points_model[start : start + DECODE_BATCH])
            for start in range(0, len(points_model), DECODE_BATCH)
        ]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _process_crop(
        self, embedding: np.ndarray, crop_box: list[int], layer: int, image_hw: tuple[int, int]
    ) -> Candidates:
        """Decode the crop's grid, filter and suppress on low-res logits, upsample what is kept."""
        s = self.settings
        x0, y0, x1, y1 = crop_box
        crop_hw = (y1 - y0, x1 - x0)
        input_hw = self.transform.get_preprocess_shape(*crop_hw, self.input_size)
        rows, cols = lowres.valid_cells(input_hw)
        # One more cell than the image covers: bilinear upsampling of the last row/column reads it.
        keep_rows, keep_cols = min(rows + 1, lowres.LOW_RES), min(cols + 1, lowres.LOW_RES)
        grid = self.point_grids[layer]
        points_crop = grid * np.array(crop_hw)[None, ::-1]  # XY crop pixels
        points_model = self.transform.apply_coords(points_crop, crop_hw)  # XY model-input pixels
        embedding_t = torch.as_tensor(np.asarray(embedding, np.float32), device=self.device)
        prepared = self.grid_decoder.prepare(embedding_t, input_hw)
        logits, ious, points = [], [], []
        n = int(round(len(grid) ** 0.5))
        coverage_aware = s.skip_covered_points and n * n == len(grid) and len(coverage.strides(n)) > 1

        def decode(indices: list[int]) -> list[torch.Tensor]:
            """Decode grid points, keep the candidates that pass the filters; each point's [3,rows,cols] bool masks."""
            binary = []
            for start in range(0, len(indices), s.points_per_batch):
                batch = np.asarray(indices[start : start + s.points_per_batch], dtype=np.int64)
                low_res, iou = self._decode(
                    prepared, torch.as_tensor(points_model[batch], dtype=torch.float, device=self.device)
                )
                if coverage_aware:
                    binary += list((low_res[:, :, :rows, :cols] > self.threshold).cpu())
                low_res, iou = low_res.flatten(0, 1)[:, :keep_rows, :keep_cols], iou.flatten()
                point_index = torch.from_numpy(batch).to(self.device).repeat_interleave(3)
                if s.pred_iou_thresh > 0:
                    keep = iou > s.pred_iou_thresh
                    low_res, iou, point_index = low_res[keep], iou[keep], point_index[keep]
                stability = lowres.stability_score(low_res[:, :rows, :cols], self.threshold, s.stability_score_offset)
                # Small masks' low-res scores are off by up to a few hundredths: settle the ones
                # near the threshold at full resolution, as SAM computes them.
                if s.stability_score_thresh > 0:
                    near = torch.nonzero((stability - s.stability_score_thresh).abs() < STABILITY_MARGIN).flatten()
                    if len(near):
                        stability[near] = self._full_res_stability(low_res[near], input_hw, crop_hw)
                    keep = stability >= s.stability_score_thresh
                    low_res, iou, stability, point_index = low_res[keep], iou[keep], stability[keep], point_index[keep]
                logits.append(low_res.clone())  # a copy, so the batch's full [B*3,256,256] is freed
                ious.append(iou)
                points.append(points_crop[point_index.cpu().numpy()])
            return binary

        if coverage_aware:
            cells = np.minimum((points_model[:, ::-1] // lowres.CELL).astype(np.int64), [rows - 1, cols - 1])
            tokens = np.asarray(embedding, np.float32)[0]  # [C,64,64]: where the image differs, decode
            self.points_skipped += coverage.visit(n, cells, decode, tokens=tokens).skipped
        else:
            decode(list(range(len(grid))))
        logits_t, iou_t = torch.cat(logits), torch.cat(ious)
        points_np = np.concatenate(points)
        boxes = lowres.boxes_xyxy(logits_t[:, :rows, :cols], self.threshold, input_hw, crop_hw)
        # Masks cut by the crop's edge are left to the layer whose crop holds them whole.
        candidates = torch.nonzero(~is_box_near_crop_edge(boxes, crop_box, [0, 0, image_hw[1], image_hw[0]])).flatten()
        nms_boxes = self._settle_boxes(logits_t[candidates], boxes[candidates], input_hw, crop_hw)
        kept = batched_nms(nms_boxes, iou_t[candidates], torch.zeros_like(candidates), s.box_nms_thresh)
        kept = candidates[kept]
        rles, boxes_full, stability_full = self._upsample_and_encode(logits_t[kept], input_hw, crop_box, image_hw)
        kept = kept.cpu()
        found = Candidates(
            rles,
            boxes_full,
            iou_t.cpu()[kept],
            stability_full,
            points_np[kept.numpy()] + np.array([x0, y0]),
            [list(crop_box)] * len(rles),
        )
        # A small mask's low-res score can be off by more than the margin (0.98 at low res, 0.91 at
        # full on a 99 px mask): what SAM filters, by its full-resolution score, goes here too.
        if s.stability_score_thresh <= 0:
            return found
        return found.take(torch.nonzero(stability_full >= s.stability_score_thresh).flatten())

    def _upsampled(
        self, logits: torch.Tensor, input_hw: tuple[int, int], crop_hw: tuple[int, int], chunk: int = 16
    ) -> Iterator[torch.Tensor]:
        """Low-res logits [N,rows+1,cols+1] -> full-resolution logits [n,H,W] of the crop, ``chunk`` at a time.

        Exactly SAM's postprocess (``model.postprocess_masks``); chunks bound the memory.
        """
        padded = torch.zeros(chunk, 1, lowres.LOW_RES, lowres.LOW_RES, device=logits.device)
        for start in range(0, len(logits), chunk):
            part = logits[start : start + chunk]
            padded.zero_()  # cells past rows+1 / cols+1 reach only pixels that postprocess crops away
            padded[: len(part), 0, : part.shape[1], : part.shape[2]] = part
            yield self.model.postprocess_masks(padded[: len(part)], input_hw, crop_hw)[:, 0]

    def _settle_boxes(
        self, logits: torch.Tensor, boxes: torch.Tensor, input_hw: tuple[int, int], crop_hw: tuple[int, int]
    ) -> torch.Tensor:
        """Boxes [N,4] for NMS: the low-res ones, but SAM's full-resolution box for each candidate in a pair whose
        low-res box IoU is within ``BOX_MARGIN`` of the NMS threshold (where a low-res box could flip the outcome).

        Arguments: logits [N,rows+1,cols+1] and low-res boxes [N,4] XYXY crop pixels of the candidates.
        """
        if len(boxes) < 2:
            return boxes
        pair_iou = box_iou(boxes, boxes).fill_diagonal_(0)
        near = ((pair_iou - self.settings.box_nms_thresh).abs() < BOX_MARGIN).any(1)
        unsure = torch.nonzero(near).flatten()
        if not len(unsure):
            return boxes
        settled = boxes.clone()
        full = [batched_mask_to_box(up > self.threshold) for up in self._upsampled(logits[unsure], input_hw, crop_hw)]
        settled[unsure] = torch.cat(full).to(settled.dtype)
        self.boxes_settled += len(unsure)
        return settled

    def _full_res_stability(
        self, logits: torch.Tensor, input_hw: tuple[int, int], crop_hw: tuple[int, int]
    ) -> torch.Tensor:
        """SAM's stability score of low-res logits [N,rows+1,cols+1], computed on the upsampled logits -> [N]."""
        offset = self.settings.stability_score_offset
        return torch.cat(
            [lowres.stability_score(up, self.threshold, offset) for up in self._upsampled(logits, input_hw, crop_hw)]
        )

    def _upsample_and_encode(
        self, logits: torch.Tensor, input_hw: tuple[int, int], crop_box: list[int], image_hw: tuple[int, int]
    ) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
        """Low-res logits [N,rows+1,cols+1] of a crop -> COCO RLEs in the image frame, boxes [N,4] XYXY
        and stability scores [N], all from the full-resolution masks (what SAM reports)."""
        x0, y0, x1, y1 = crop_box
        rles, boxes, stability = [], [torch.zeros(0, 4, dtype=torch.long)], [torch.zeros(0)]
        for up in self._upsampled(logits, input_hw, (y1 - y0, x1 - x0)):
            stability.append(lowres.stability_score(up, self.threshold, self.settings.stability_score_offset).cpu())
            masks = up > self.threshold
            full = torch.zeros(len(masks), *image_hw, dtype=torch.bool)
            full[:, y0:y1, x0:x1] = masks.cpu()
            boxes.append(batched_mask_to_box(full))
            rles += mask_utils.encode(np.asfortranarray(full.permute(1, 2, 0).numpy().astype(np.uint8)))
        return rles, torch.cat(boxes), torch.cat(stability)

    def _remove_small_regions(self, found: Candidates, min_area: int, nms_thresh: float) -> Candidates:
        """Fill holes and drop islands smaller than ``min_area``, then suppress new duplicates (SAM's way)."""
        scores = []
        for i, rle in enumerate(found.rles):
            mask = mask_utils.decode(rle).astype(bool)
            mask, changed_holes = remove_small_regions(mask, min_area, mode="holes")
            mask, changed_islands = remove_small_regions(mask, min_area, mode="islands")
            changed = changed_holes or changed_islands
            if changed:
                found.rles[i] = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                found.boxes[i] = batched_mask_to_box(torch.from_numpy(mask))
            scores.append(0.0 if changed else 1.0)  # NMS prefers untouched masks
        return found.take(batched_nms(found.boxes.float(), torch.tensor(scores), torch.zeros(len(scores)), nms_thresh))

    @staticmethod
    def _records(found: Candidates) -> list[dict]:
        records = []
        for i, rle in enumerate(found.rles):
            x0, y0, x1, y1 = (int(v) for v in found.boxes[i])
            cx0, cy0, cx1, cy1 = found.crop_boxes[i]
            records.append(
                {
                    "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()},
                    "area": int(mask_utils.area(rle)),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "predicted_iou": float(found.iou[i]),
                    "point_coords": [[float(v) for v in found.points[i]]],
                    "stability_score": float(found.stability[i]),
                    "crop_box": [cx0, cy0, cx1 - cx0, cy1 - cy0],
                }
            )
        return records
