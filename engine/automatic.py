"""Automatic mask generation (SAM's stage 3) on maskloop's models and cached embeddings.

segment-anything's ``SamAutomaticMaskGenerator`` does the grid prompts, multimask output,
predicted-IoU and stability filtering, NMS, crop zoom-ins and small-region removal; maskloop
only swaps its predictor for one that takes the full image's embedding from the cache
(crops are embedded on the fly).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from maskloop.exporter.embedding import ImageEmbedder


@dataclass
class GeneratorSettings:
    """SAM's defaults (points_per_side 32, pred IoU 0.88, stability 0.95, NMS 0.7)."""

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0


def _cached_predictor(model: torch.nn.Module, embedder: ImageEmbedder):
    from segment_anything import SamPredictor

    class CachedPredictor(SamPredictor):
        """A SamPredictor whose ``set_image`` uses a given embedding for the full image."""

        full_image_shape: tuple | None = None
        full_embedding: np.ndarray | None = None

        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            self.reset_image()
            self.original_size = image.shape[:2]
            self.input_size = tuple(self.transform.get_preprocess_shape(*image.shape[:2], self.model.image_encoder.img_size))
            if self.full_embedding is not None and image.shape == self.full_image_shape:
                embedding = self.full_embedding
            else:
                embedding = embedder.embed([image])
            self.features = torch.from_numpy(np.asarray(embedding, np.float32)).to(self.device)
            self.is_image_set = True

    return CachedPredictor(model)


class AutomaticMaskGenerator:
    """Generate every object's mask in an image; results in SA-1B style (RLE, scores)."""

    def __init__(self, model: torch.nn.Module, embedder: ImageEmbedder, settings: GeneratorSettings | None = None) -> None:
        from segment_anything import SamAutomaticMaskGenerator

        self.settings = settings or GeneratorSettings()
        self.generator = SamAutomaticMaskGenerator(model, output_mode="coco_rle", **asdict(self.settings))
        self.generator.predictor = _cached_predictor(model, embedder)

    @torch.inference_mode()
    def generate(self, image: np.ndarray, embedding: np.ndarray | None = None) -> list[dict]:
        """Masks of ``image`` (HxWx3 uint8 RGB); ``embedding`` [1,256,64,64] if already computed.

        Returns:
          list of dicts: ``segmentation`` (COCO RLE, counts str), ``area``, ``bbox`` (XYWH),
          ``predicted_iou``, ``stability_score``, ``point_coords``, ``crop_box``; sorted by
          predicted IoU, best first.
        """
        predictor = self.generator.predictor
        predictor.full_image_shape, predictor.full_embedding = image.shape, embedding
        try:
            masks = self.generator.generate(image)
        finally:
            predictor.full_embedding = None
        return sorted(masks, key=lambda m: -m["predicted_iou"])
