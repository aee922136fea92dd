"""Opening the page and its images: what the first click waits for."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from test_web_page import python_mask, rle_mask

from maskloop.masks import mask_iou

WEB = Path(__file__).resolve().parents[2] / "web"
CAT_POINT = (250.0, 150.0)


def _imports(module: str) -> set[str]:
    """The modules ``web/js/<module>`` imports, directly or not (itself included)."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += re.findall(r'^import[^;]*?from\s+"\./([\w-]+\.js)"', (WEB / "js" / name).read_text(), re.M | re.S)
    return seen


def test_index_preloads_every_module_the_page_imports():
    """index.html names all of app.js's imports as modulepreload, so they load at once, not level by level."""
    html = (WEB / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/web/js/([\w-]+\.js)"', html))
    assert preloaded == _imports("app.js") - {"app.js"}


@pytest.mark.browser
@pytest.mark.slow
def test_web_prefetched_image_opens_with_its_prefix_run_ahead_and_no_warm_up(annotator, live, decoder_for):
    """The next image's decoder prefix runs while the worker is idle after the prefetch, so opening
    it runs neither the prefix nor a warm-up decode; its click's mask is still the decoder's."""
    a = annotator
    names = [im["file_name"] for im in live.get_json("/api/images")]
    k = names.index("cat_prefix.jpg")
    nxt = names[k + 1]
    a.goto("cat_prefix.jpg")
    assert a.state("s.prepared.warmMs") > 0  # the fresh decoder warmed up on the first image
    assert len(a.state("s.prepared.tierUpMs")) == 8  # and ran TIER_UP_RUNS (worker-model.js) more
    a.page.wait_for_timeout(2000)  # the prefetch, then the idle worker runs the next image's prefix
    a.page.evaluate(f"maskloop.openImage({k + 1})")
    a.page.wait_for_function(f"() => maskloop.ready && maskloop.image.file_name === '{nxt}'", timeout=60_000)
    prepared = a.state("s.prepared")
    assert prepared["imageId"] == live.image_id(nxt)
    assert prepared["aheadMs"] > 0 and prepared["ms"] < 5 and prepared["warmMs"] == 0, prepared
    assert prepared["tierUpMs"] == [], prepared  # once per page: the wasm stays optimised
    a.page.locator("#stage").focus()
    a.click(*CAT_POINT)
    current = a.state("s.current")
    prompts = {"points": [[*CAT_POINT, 1]], "box": None, "decoder": a.state("s.decoderPrecision"), "candidate": 0}
    _, pred = python_mask(live, decoder_for, nxt, prompts)
    assert np.allclose(current["iou"], pred.iou, atol=1e-3), (current["iou"], pred.iou)


def _press(a, x: float, y: float, button: str = "left") -> None:
    """A click like a person's (the button held 100 ms), waiting for its mask but not for the page to be idle."""
    n = a.state("s.latencyCount")
    a.page.mouse.move(*a.client_xy(x, y))
    a.page.mouse.down(button=button)
    a.page.wait_for_timeout(100)
    a.page.mouse.up(button=button)
    a.page.wait_for_function(f"() => maskloop.latencyCount > {n}", timeout=60_000)


@pytest.mark.browser
@pytest.mark.slow
def test_web_clicks_before_the_decoder_loads_are_decoded_by_the_server(annotator, live, decoder_for):
    """While the page's decoder is still loading, a click and a refining click are answered by the
    server's native decoder; once it has loaded, the page accepts (encodes) that very result, and
    the mask is SAM's for those prompts."""
    a = annotator
    held = []  # the prompt graph's download, let through once the clicks are answered
    a.page.context.route("**/decoder_prompt.onnx?*", lambda route: held.append(route))
    a.page.goto(f"{live.url}/#image={live.image_id('cat_cold.jpg')}")
    a.page.wait_for_function("() => window.maskloop && maskloop.pictureShown", timeout=60_000)
    a.page.locator("#stage").focus()
    _press(a, *CAT_POINT)
    first = a.state("s.current")
    _press(a, 320, 220, button="right")
    assert held and not a.state("s.decoderInfo"), "the decoder should still be loading"
    assert [v["server"] for v in a.state("s.latencies")] == [True, True]
    assert a.state("s.maskShown") and a.state("s.current.done")
    held[0].continue_()
    a.wait_ready()
    saved = a.accept()
    prompts = saved["prompts"]
    assert len(prompts["points"]) == 2
    one = dict(prompts, points=prompts["points"][:1], candidate=first["candidate"])
    _, first_pred = python_mask(live, decoder_for, "cat_cold.jpg", one)
    assert np.allclose(first["iou"], first_pred.iou, atol=1e-3)
    ref, _ = python_mask(
        live, decoder_for, "cat_cold.jpg", prompts, mask_input=first_pred.low_res_logits[first["candidate"]]
    )
    assert mask_iou(rle_mask(saved), ref) >= 0.99
    # The page's own decoder takes the next click, warm: it ran its warm-up while the server answered.
    assert a.state("s.prepared.warmMs") > 0
    a.key("Escape")
    a.click(*CAT_POINT)
    assert a.state("s.latencies.at(-1).server") is False


@pytest.mark.browser
@pytest.mark.slow
def test_web_click_the_server_cannot_decode_is_decoded_by_the_page_once_it_loads(annotator, live):
    """A click made while the page's decoder loads, which the server refuses (503), is not lost: the
    page's own decoder answers it when it has loaded."""
    a = annotator
    refused, held = [], []

    def refuse(route):
        refused.append(route.request.url)
        route.fulfill(status=503, content_type="application/json", body='{"error": "the decoder is busy"}')

    a.page.context.route("**/api/images/*/decode", refuse)
    a.page.context.route("**/decoder_prompt.onnx?*", lambda route: held.append(route))
    a.page.goto(f"{live.url}/#image={live.image_id('cat_cold.jpg')}")
    a.page.wait_for_function("() => window.maskloop && maskloop.pictureShown", timeout=60_000)
    a.page.locator("#stage").focus()
    a.page.mouse.move(*a.client_xy(*CAT_POINT))
    a.page.mouse.down()
    a.page.mouse.up()
    for _ in range(300):
        if refused and held:
            break
        a.page.wait_for_timeout(100)
    assert refused and held and a.state("s.latencyCount") == 0
    held[0].continue_()
    a.page.wait_for_function("() => maskloop.latencyCount > 0", timeout=120_000)
    assert a.state("s.latencies[0].server") is False and a.state("s.maskShown")


@pytest.mark.browser
@pytest.mark.slow
def test_web_fresh_decoder_tiers_up_while_the_server_answers_clicks(annotator, live):
    """A fresh page runs its decoder a number of times (``?warm=N``; V8 optimises the wasm meanwhile)
    before the open image counts as prepared: a click made then is decoded by the server (the
    worker lets the click's requests through between runs), all N runs are still made, and the
    page's own decoder takes the clicks after that."""
    a = annotator
    a.page.goto(f"{live.url}/?warm=12#image={live.image_id('cat_cold.jpg')}")
    a.page.wait_for_function("() => window.maskloop && maskloop.decoderInfo && maskloop.pictureShown", timeout=120_000)
    assert a.state("s.prepared") is None, "the decoder should still be preparing (prefix, warm-up, tier-up)"
    a.page.locator("#stage").focus()
    _press(a, *CAT_POINT)
    assert a.state("s.latencies[0].server") is True
    a.wait_ready()
    tier_up = a.state("s.prepared.tierUpMs")
    assert len(tier_up) == 12 and min(tier_up) > 0, tier_up
    a.key("Escape")
    a.click(*CAT_POINT)
    assert a.state("s.latencies.at(-1).server") is False and a.state("s.maskShown")
