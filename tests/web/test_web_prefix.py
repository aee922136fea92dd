"""The page runs the decoder split in two (exporter/decoder_prefix.py) and its masks are SAM's."""

from __future__ import annotations

import pytest
from test_web_page import python_mask, rle_mask

from maskloop.masks import mask_iou

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CAT_POINT = (250.0, 150.0)


def test_web_split_decoder_gives_the_single_graphs_masks(annotator, live, decoder_for):
    a = annotator
    manifest = live.get_json("/api/model")
    assert manifest["prefix"]["prompt"]["url"].split("?")[0].endswith("/decoder_prompt.onnx")
    a.goto("cat_prefix.jpg")
    assert a.state("s.decoderInfo.split") is True
    a.page.locator("#stage").focus()
    a.click(*CAT_POINT)
    first = a.state("s.current")
    a.click(320, 220, button="right")
    saved = a.accept()
    prompts = saved["prompts"]
    one = dict(prompts, points=prompts["points"][:1], candidate=first["candidate"])
    _, first_pred = python_mask(live, decoder_for, "cat_prefix.jpg", one)
    ref, _ = python_mask(
        live, decoder_for, "cat_prefix.jpg", prompts, mask_input=first_pred.low_res_logits[first["candidate"]]
    )
    assert mask_iou(rle_mask(saved), ref) >= 0.97

    # ?prefix=0: the single graph, the same mask for the same click.
    a.page.goto(f"{live.url}/?prefix=0#image={live.image_id('cat_prefix.jpg')}")
    a.wait_ready()
    assert a.state("s.decoderInfo.split") is False
    a.page.locator("#stage").focus()
    a.click(*CAT_POINT)
    saved_single = a.accept()
    ref_single, _ = python_mask(live, decoder_for, "cat_prefix.jpg", saved_single["prompts"])
    assert mask_iou(rle_mask(saved_single), ref_single) >= 0.97


def test_web_ready_page_has_run_the_prefix_and_the_warm_up_on_the_open_image(annotator, live):
    """The first click after the page is ready finds the decoder idle and warm: the open image's
    prefix and the fresh decoder's warm-up run (on that prefix) are part of opening it."""
    a = annotator
    a.goto("cat_prefix.jpg")
    prepared = a.state("s.prepared")
    assert prepared["imageId"] == live.image_id("cat_prefix.jpg") and prepared["warmMs"] > 0
    a.page.locator("#stage").focus()
    a.click(*CAT_POINT)
    assert a.state("s.maskShown")
