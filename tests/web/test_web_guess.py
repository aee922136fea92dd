"""Decodes started before the prompt is made (web/js/guess.js): at the press, and the hover preview.

A guessed decode must give exactly the mask the prompt gives (the same exported decoder in
Python is the reference), be used only for that prompt, and be dropped for any other.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_web_page import python_mask, rle_mask

from maskloop.masks import mask_iou

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CAT_POINT = (250.0, 150.0)  # between the cat's eyes
HOLD_MS = 1500  # a press held this long: its decode is done before the release, even on a busy CPU


def guesses(a) -> dict:
    return a.state("s.guesses")


def last_latency(a) -> dict:
    return a.state("s.latencies[s.latencies.length - 1]")


def held_click(a, x: float, y: float, button: str = "left") -> None:
    """Press at image pixel (x, y), hold, release; wait for the mask."""
    cx, cy = a.client_xy(x, y)
    n = a.state("s.latencyCount")
    a.page.mouse.move(cx, cy)
    a.page.mouse.down(button=button)
    a.page.wait_for_timeout(HOLD_MS)
    a.page.mouse.up(button=button)
    a.page.wait_for_function(f"() => maskloop.latencyCount > {n}", timeout=60_000)
    a.idle()


def test_web_press_decodes_before_the_release_and_the_click_uses_it(annotator, live, decoder_for):
    a = annotator
    a.goto("cat_guess.jpg")
    a.page.locator("#stage").focus()
    before = guesses(a)["press"]
    held_click(a, *CAT_POINT)
    after = guesses(a)["press"]
    assert after["started"] == before["started"] + 1 and after["used"] == before["used"] + 1
    lat = last_latency(a)
    assert lat["guess"] == "press"
    # The decoder ran during the press: from the release only the drawing was left.
    assert lat["total"] < lat["decode"], lat
    first = a.state("s.current")
    held_click(a, 300, 200, button="right")  # a background point is guessed at the press too
    assert guesses(a)["press"]["used"] == before["used"] + 2
    assert last_latency(a)["guess"] == "press"
    saved = a.accept()
    prompts = saved["prompts"]
    assert np.allclose(prompts["points"], [[*CAT_POINT, 1], [300, 200, 0]], atol=0.5)
    # The masks are SAM's: the first click's logits fed back with the second (the page's protocol).
    one = dict(prompts, points=prompts["points"][:1], candidate=first["candidate"])
    _, first_pred = python_mask(live, decoder_for, "cat_guess.jpg", one)
    ref, _ = python_mask(
        live, decoder_for, "cat_guess.jpg", prompts, mask_input=first_pred.low_res_logits[first["candidate"]]
    )
    assert mask_iou(rle_mask(saved), ref) >= 0.97


def test_web_drag_drops_the_decode_of_its_press(annotator, live, decoder_for):
    a = annotator
    a.goto("cat_guess.jpg")
    a.page.locator("#stage").focus()
    a.key("Escape")
    before = guesses(a)["press"]
    a.drag_box(120, 40, 380, 290)
    after = guesses(a)["press"]
    assert after["started"] == before["started"] + 1
    assert after["used"] == before["used"] and after["dropped"] == before["dropped"] + 1
    prompt = a.prompt()
    assert prompt["points"] == [] and prompt["box"] is not None
    assert last_latency(a)["guess"] is None
    saved = a.accept()
    ref, _ = python_mask(live, decoder_for, "cat_guess.jpg", saved["prompts"])
    assert mask_iou(rle_mask(saved), ref) >= 0.97


def test_web_hover_preview_shows_the_mask_a_click_gives_and_the_click_takes_it(annotator, live, decoder_for):
    a = annotator
    a.goto("cat_hover.jpg")
    a.page.locator("#stage").focus()
    assert a.state("s.hoverPreview") is False and not a.page.is_checked("#hover-preview")
    help_keys = a.page.locator("#help-table").inner_text()
    assert "hover preview" in help_keys
    a.page.keyboard.press("v")
    assert a.state("s.hoverPreview") is True and a.page.is_checked("#hover-preview")
    cx, cy = a.client_xy(*CAT_POINT)
    a.page.mouse.move(cx, cy)
    a.page.wait_for_function("() => maskloop.previewShown", timeout=60_000)
    assert guesses(a)["hover"]["started"] >= 1
    assert np.count_nonzero(a.overlay()) > 0, "the preview is not drawn"
    n = a.state("s.latencyCount")
    a.page.mouse.down()
    a.page.wait_for_timeout(100)
    a.page.mouse.up()
    a.page.wait_for_function(f"() => maskloop.latencyCount > {n}", timeout=60_000)
    a.idle()
    lat = last_latency(a)
    assert lat["guess"] == "hover" and lat["total"] < lat["decode"], lat
    assert guesses(a)["hover"]["used"] == 1
    saved = a.accept()
    assert np.allclose(saved["prompts"]["points"], [[*CAT_POINT, 1]], atol=0.5)
    ref, _ = python_mask(live, decoder_for, "cat_hover.jpg", saved["prompts"])
    assert mask_iou(rle_mask(saved), ref) >= 0.97

    # The pointer crosses the image resting briefly at many points: only the latest waits for the
    # decode in flight (the rest are forgotten), and the preview ends up at the last point.
    points = [(60.0 + 40 * k, 80.0 + 15 * k) for k in range(8)]
    before = guesses(a)["hover"]
    for x, y in points:
        a.page.mouse.move(*a.client_xy(x, y))
        a.page.wait_for_timeout(250)
    a.page.wait_for_function(
        f"() => maskloop.previewPoint && Math.abs(maskloop.previewPoint[0] - {points[-1][0]}) < 0.5", timeout=60_000
    )
    after = guesses(a)["hover"]
    started = after["started"] - before["started"]
    skipped = after["skipped"] - before["skipped"]
    assert started + skipped == len(points) and started >= 1
    assert np.allclose(a.state("s.previewPoint"), points[-1], atol=0.5)

    a.page.keyboard.press("v")  # off: the preview goes, and no more come
    assert a.state("s.hoverPreview") is False and not a.state("s.previewShown")
    started = guesses(a)["hover"]["started"]
    a.page.mouse.move(*a.client_xy(*CAT_POINT))
    a.page.wait_for_timeout(400)
    assert guesses(a)["hover"]["started"] == started and not a.state("s.previewShown")
