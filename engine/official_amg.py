"""segment-anything's own ``SamAutomaticMaskGenerator`` on a cached embedding: the reference.

maskloop generates with ``engine.automatic.AutomaticMaskGenerator``; this wrapper runs the
official generator unchanged (only its predictor takes the full image's embedding from the
cache; crops are embedded on the fly) so tests and ``bench/bench_amg.py`` can compare the two on
the same model, embedding and settings.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import numpy as np
import torch

from maskloop.engine.automatic import GeneratorSettings
from maskloop.exporter.embedding import ImageEmbedder

if TYPE_CHECKING:
    from segment_anything import SamPredictor
    from segment_anything.modeling import Sam


def _cached_predictor(model: Sam, embedder: ImageEmbedder) -> SamPredictor:
    from segment_anything import SamPredictor

    class CachedPredictor(SamPredictor):
        """A SamPredictor whose ``set_image`` uses a given embedding for the full image."""

        full_image_shape: tuple | None = None
        full_embedding: np.ndarray | None = None

        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            self.reset_image()
            self.original_size = image.shape[:2]
            self.input_size = tuple(
                self.transform.get_preprocess_shape(*image.shape[:2], self.model.image_encoder.img_size)
            )
            if self.full_embedding is not None and image.shape == self.full_image_shape:
                embedding = self.full_embedding
            else:
                embedding = embedder.embed([image])
            self.features = torch.from_numpy(np.asarray(embedding, np.float32)).to(self.device)
            self.is_image_set = True

    return CachedPredictor(model)


def official_settings(settings: GeneratorSettings) -> dict:
    """The settings ``SamAutomaticMaskGenerator`` takes (all of maskloop's but ``skip_covered_points``)."""
    kwargs = asdict(settings)
    kwargs.pop("skip_covered_points")
    return kwargs


class OfficialMaskGenerator:
    """``SamAutomaticMaskGenerator`` with maskloop's settings; same ``generate`` as ``AutomaticMaskGenerator``."""

    def __init__(self, model: Sam, embedder: ImageEmbedder, settings: GeneratorSettings | None = None) -> None:
        from segment_anything import SamAutomaticMaskGenerator

        self.settings = settings or GeneratorSettings()
        self.generator = SamAutomaticMaskGenerator(model, output_mode="coco_rle", **official_settings(self.settings))
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
