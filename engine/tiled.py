"""A decoder that answers prompts on a large image from tiles, as the server and the page do.

``TiledDecoder`` wraps any ``Decoder`` (predictors.py): each prompt (image frame) is routed by
``maskloop.tiles.route_prompt``; a prompt routed to the whole image is decoded on the whole
image's embedding as before, one routed to a tile or crop on that region's embedding (computed the
first time and kept), in the region's frame, and its masks are placed back at the region's offset,
so a ``Prediction`` is always at the full image size. ``maskloop evaluate --tiles on|off`` compares
the two on the same click protocol.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from maskloop.engine.predictors import Decoder
from maskloop.exporter.decoder_runtime import Prediction
from maskloop.prompt import Prompt
from maskloop.tiles import Box, Route, Tiling, route_prompt

#: Region embeddings kept per image (4 MB each as float32).
REGIONS_KEPT = 16


class TiledDecoder:
    """Routes prompts on large images to their tile (see the module's docstring).

    Arguments:
      decoder: the decoder that runs a prompt on one embedding.
      embed_region: (x0, y0, x1, y1) image pixels of the open image -> its embedding [1,256,64,64].
      tiling: tile size, overlap and the long side above which an image is tiled.

    Call ``open_image`` when the image changes (the kept region embeddings are the open image's).
    A prompt's ``mask_input`` (an earlier prediction's low-res logits) is used only when that
    prediction was made on the same region: logits of another region are in another frame.
    """

    def __init__(self, decoder: Decoder, embed_region: Callable[[Box], np.ndarray], tiling: Tiling) -> None:
        self.decoder = decoder
        self.embed_region = embed_region
        self.tiling = tiling
        self._regions: OrderedDict[Box, np.ndarray] = OrderedDict()
        self._last: Box | None = None
        self.routes: list[Route] = []  # every prompt's route, in order (for reports)

    def open_image(self) -> None:
        """Forget the previous image's region embeddings."""
        self._regions.clear()
        self._last = None

    def region_embedding(self, region: Box) -> np.ndarray:
        """The embedding [1,256,64,64] of a region of the open image, computed once."""
        kept = self._regions.get(region)
        if kept is None:
            kept = self._regions[region] = self.embed_region(region)
            while len(self._regions) > REGIONS_KEPT:
                self._regions.popitem(last=False)
        self._regions.move_to_end(region)
        return kept

    def decode(self, embedding: np.ndarray, prompt: Prompt) -> Prediction:
        """The 4 candidates for ``prompt`` (image frame), masks (4,H,W) at the full image size;
        ``low_res_logits`` (4,256,256) are in the frame of the region the prompt was routed to."""
        if prompt.frame != "image":
            raise ValueError("a tiled decoder takes prompts in the image frame")
        h, w = prompt.image_hw
        box = None if prompt.box_xyxy is None else prompt.box_xyxy.tolist()
        route = route_prompt(prompt.points_xy.tolist(), box, w, h, self.tiling)
        self.routes.append(route)
        same_frame = self._last == route.region
        self._last = route.region
        if route.kind == "image":
            if not same_frame and prompt.mask_input is not None:
                prompt = Prompt(prompt.image_hw, prompt.points_xy, prompt.labels, prompt.box_xyxy)
            return self.decoder.decode(embedding, prompt)
        x0, y0, x1, y1 = route.region
        offset = np.array([x0, y0], np.float32)
        local = Prompt(
            route.hw,
            prompt.points_xy - offset,
            prompt.labels,
            box_xyxy=None if prompt.box_xyxy is None else prompt.box_xyxy - np.tile(offset, 2),
            mask_input=prompt.mask_input if same_frame else None,
        )
        on_region = self.decoder.decode(self.region_embedding(route.region), local)
        masks = np.zeros((on_region.masks.shape[0], h, w), bool)
        masks[:, y0:y1, x0:x1] = on_region.masks
        return Prediction(masks=masks, iou=on_region.iou, low_res_logits=on_region.low_res_logits)
