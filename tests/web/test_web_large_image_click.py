"""A 9000x6000 picture in the page (issue 24): zoom to a small object, click it, Enter; the stored
mask is decoded on the object's tile and matches the truth at full resolution.

The picture is ``engine.small_objects.make_scene`` (exact truth), saved as a JPEG. The threshold:
bench/bench_large_images.py measures one click on such ~80 px objects at IoU 0.93-0.97 on their
tile (and 0.9-0.97 on a 1024 crop), against 0.3-0.5 on the whole image's embedding; 0.85 leaves
room for JPEG and the page's fp16 embedding and is far above what an untiled click gets.
"""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from web_harness import LARGE_SCENE, VIEWPORT, Annotator, large_scene_server

from maskloop.engine.evaluate import farthest_from_boundary
from maskloop.masks import mask_iou
from maskloop.tiles import Tiling, route_prompt

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W, H = LARGE_SCENE


@pytest.fixture(scope="module")
def large(tmp_path_factory, web_cache):
    with large_scene_server(tmp_path_factory, web_cache, seed=2, quality=95) as served:
        yield served


def test_web_click_on_a_small_object_of_a_large_image_saves_a_full_resolution_mask(browser, large):
    server, objects = large
    context = browser.new_context(viewport=VIEWPORT)
    a = Annotator(context.new_page(), server)
    try:
        a.goto("field.jpg")
        assert a.state("s.image.width") == W and a.state("s.image.height") == H
        for obj in objects:  # one in the open, one across a tile edge
            x, y = farthest_from_boundary(obj.mask)
            x, y = obj.box[0] + x + 0.5, obj.box[1] + y + 0.5
            a.page.mouse.move(*a.client_xy(x, y))
            for _ in range(12):
                a.page.mouse.wheel(0, -240)
            a.idle()
            assert a.state("s.view.scale") >= 1, "the wheel did not zoom in to 1:1"
            a.click(x, y)
            annotation = a.accept()
            seg = dict(annotation["segmentation"])
            assert seg["size"] == [H, W]
            seg["counts"] = seg["counts"].encode()
            saved = mask_utils.decode(seg).astype(bool)
            iou = mask_iou(saved, obj.full((H, W)))
            assert iou > 0.85, f"object at {obj.box} (on a tile edge: {obj.on_border}): IoU {iou:.3f}"
            x0, y0, x1, y1 = route_prompt([[x, y]], None, W, H, Tiling()).region
            ys, xs = np.nonzero(saved)
            assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1  # from its tile
            for _ in range(12):
                a.page.mouse.wheel(0, 240)
            a.idle()
        assert not a.errors, f"the page threw: {a.errors}"
    finally:
        context.close()
