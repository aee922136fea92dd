"""Stage 2 of the data engine in the page: Propose, proposals drawn and listed, accept / reject /
refine them, the uncovered area, the stats link. Debian's Chromium against a live server.

The test that reads the stage statistics runs its own ``maskloop serve`` on one copy of
chelsea.jpg (451x300; the embedding is cached between runs), so the statistics are its own; the
others, which look only at their own image, share one server with a copy of the photo each. All
propose on a 6x6 grid (a few seconds on a 2-core CPU). ``MASKLOOP_PROPOSALS_SCREENSHOT=PATH`` also saves the page with
proposals shown to PATH (how docs/screenshot_proposals.png is made).
"""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from web_harness import VIEWPORT, Annotator, copy_images, mask_in_screen, start_server

from maskloop.masks import mask_iou

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GRID = 6
IMAGE = "cat.jpg"
CAT_HW = (300, 451)


def open_page(browser, server, file_name: str):
    """The page on ``server`` with ``file_name`` open and ``?propose_points=6`` (a generator for a fixture)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        driver = Annotator(page, server)
        driver.file_name = file_name  # the image this test works on (``annotations``)
        page.goto(f"{server.url}/?propose_points={GRID}#image={server.image_id(file_name)}")
        driver.wait_ready()
        yield driver
        assert not driver.errors, f"the page threw: {driver.errors}"
    finally:
        context.close()


@pytest.fixture
def engine_alone(browser, web_cache, tmp_path):
    """The page on a fresh server holding one cat photo: the server-wide statistics are this test's."""
    data = copy_images(tmp_path / "data", {IMAGE: "chelsea.jpg"})
    server = start_server(data, tmp_path / "work", web_cache)
    try:
        yield from open_page(browser, server, IMAGE)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def engine_server(request, web_cache, tmp_path_factory):
    """One server for this module's ``engine`` tests, holding a copy of the cat photo per test."""
    tests = [item.name for item in request.session.items if item.module is request.module]
    data = copy_images(tmp_path_factory.mktemp("engine-data"), {f"{name}.jpg": "chelsea.jpg" for name in tests})
    server = start_server(data, tmp_path_factory.mktemp("engine-work"), web_cache)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def engine(request, browser, engine_server):
    """The page on the module's server with this test's own copy of the cat photo open."""
    yield from open_page(browser, engine_server, f"{request.node.name}.jpg")


def rle_mask(segmentation: dict) -> np.ndarray:
    return mask_utils.decode(dict(segmentation, counts=segmentation["counts"].encode())).astype(bool)


def annotations(a: Annotator) -> dict[int, dict]:
    return {x["id"]: x for x in a.server.get_json(f"/api/images/{a.server.image_id(a.file_name)}/annotations")}


def propose(a: Annotator) -> list[dict]:
    """Press Propose; check the "proposing…" state, then "N new proposals"; the proposals, best first."""
    requests = []
    a.page.on("request", lambda r: r.method == "POST" and r.url.endswith("/propose") and requests.append(r.post_data))
    a.page.click("#propose-button")
    status = a.page.locator("#propose-status")
    assert "proposing" in status.inner_text()
    a.page.wait_for_function("() => !maskloop.proposing", timeout=120_000)
    a.idle()
    assert [json.loads(body) for body in requests] == [{"points_per_side": GRID}]
    n = len(a.state("s.annotations.filter((x) => x.status === 'proposed')"))
    assert n >= 3, f"chelsea.jpg gave {n} proposals on a {GRID}x{GRID} grid"
    assert re.fullmatch(rf"{n} new proposals · [\d.]+ s", status.inner_text())
    rows = a.page.locator("#proposal-list li[data-annotation-id]")
    assert rows.count() == n and a.page.locator("#proposal-count").inner_text() == str(n)
    listed = [int(rows.nth(k).get_attribute("data-annotation-id")) for k in range(n)]
    stored = annotations(a)
    assert all(stored[i]["status"] == "proposed" and stored[i]["stage"] == "semi" for i in listed)
    ious = [stored[i]["predicted_iou"] for i in listed]
    assert ious == sorted(ious, reverse=True), "proposals are not listed best first"
    assert rows.nth(0).inner_text().startswith(f"IoU {ious[0]:.2f}")
    return [stored[i] for i in listed]


def layer_rgba(a: Annotator, layer: str) -> np.ndarray:
    return np.dstack([a.canvas_rgb(layer), a.overlay(layer)])


def drawn_pixels(a: Annotator, annotation: dict) -> np.ndarray:
    """RGBA (N, 4) of the annotation layer's drawn pixels that lie inside the annotation's mask."""
    rgba = layer_rgba(a, "annotations")
    xs, ys = a.screen_to_image_grid(rgba.shape[:2])
    inside = mask_in_screen(rle_mask(annotation["segmentation"]), xs, ys)
    pixels = rgba[inside]
    return pixels[pixels[:, 3] > 0].astype(int)


def test_web_propose_accept_reject_counts_in_stats(engine_alone, tmp_path):
    a = engine_alone
    assert a.page.locator("#stats-link").get_attribute("href") == "/stats"
    a.page.click("#help-button")
    assert "propose" in a.page.locator("#help-table").inner_text()
    a.page.keyboard.press("Escape")
    a.create_category("cat", "#ff8800")
    proposals = propose(a)

    # Drawn, and distinctly: a faint neutral fill with a black-and-white dashed outline.
    first, second = proposals[0], proposals[1]
    pixels = drawn_pixels(a, second)
    assert len(pixels) > 0.5 * second["area"] * a.state("s.view.scale") ** 2, "the proposal is not drawn"
    grey = np.abs(pixels[:, 0] - pixels[:, 1]) + np.abs(pixels[:, 1] - pixels[:, 2]) < 12
    assert grey.mean() > 0.95, "a proposal is drawn in a colour, not neutral"
    assert np.median(pixels[:, 3]) < 160, "a proposal's fill is not faint"
    dark_edge = (pixels[:, 3] == 255) & (pixels[:, 0] < 30)
    light_edge = (pixels[:, 3] == 255) & (pixels[:, 0] > 225)
    assert dark_edge.any() and light_edge.any(), "a proposal's outline is not dashed black and white"

    # Accept the highlighted one with the key, reject the next with its button.
    assert a.state("s.proposalCursor") == first["id"]
    a.page.locator("#stage").focus()
    a.key("a")
    assert a.state("s.proposalCursor") == second["id"], "the cursor did not move to the next proposal"
    a.page.click(f"#proposal-list li[data-annotation-id='{second['id']}'] button[data-action=reject]")
    a.idle()

    cat_id = a.state("s.categoryId")
    stored = annotations(a)
    assert stored[first["id"]]["status"] == "accepted" and stored[first["id"]]["category_id"] == cat_id
    assert stored[second["id"]]["status"] == "rejected"
    pending = [p["id"] for p in proposals[2:]]
    assert all(stored[i]["status"] == "proposed" for i in pending)

    listed = a.page.locator("#proposal-list li[data-annotation-id]")
    assert [int(listed.nth(k).get_attribute("data-annotation-id")) for k in range(listed.count())] == pending
    masks = a.page.locator("#annotation-list li[data-annotation-id]")
    assert masks.count() == 1 and masks.first.get_attribute("data-annotation-id") == str(first["id"])
    assert second["id"] not in a.state("s.annotations.map((x) => x.id)"), "a rejected proposal is still shown"
    assert a.page.locator("#proposal-count").inner_text() == str(len(pending))
    # The accepted one now has the category's colour.
    orange = drawn_pixels(a, first)
    assert ((orange[:, 0] > 200) & (orange[:, 2] < 80)).mean() > 0.8, (
        "an accepted proposal is not in its category's colour"
    )

    semi = a.server.get_json("/api/stats")["stages"]["semi"]
    assert semi["proposal_acceptance_rate"] == 0.5
    assert semi["masks"] == 1 and semi["proposals_pending"] == len(pending)

    # What docs/screenshot_proposals.png shows: an accepted proposal, the others, the uncovered area.
    a.page.mouse.move(5, 790)
    a.key("u")
    screenshot = tmp_path / "proposals.png"
    a.page.screenshot(path=str(screenshot))
    if os.environ.get("MASKLOOP_PROPOSALS_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["MASKLOOP_PROPOSALS_SCREENSHOT"])


def test_web_refine_a_proposal_with_a_point(engine):
    from maskloop.exporter.decoder_runtime import OnnxDecoder

    a = engine
    a.create_category("cat part", "#2ecc71")
    proposals = propose(a)
    target = next(p for p in proposals if 1000 < p["area"] < 20000)  # one eye or so: room to grow
    a.page.click(f"#proposal-list li[data-annotation-id='{target['id']}'] button[data-action=refine]")
    a.idle()
    assert a.state("s.editing && s.editing.proposal") is True
    seed = a.state("s.current")
    gx, gy = target["prompts"]["point"]
    assert seed["seed"] and seed["prompt"]["points"] == [{"x": gx, "y": gy, "label": 1}]
    before = rle_mask(target["segmentation"])
    shown = a.overlay() > 0
    xs, ys = a.screen_to_image_grid(shown.shape)
    assert mask_iou(shown, mask_in_screen(before, xs, ys)) > 0.85, "refine does not start from the proposal's mask"

    # A foreground point outside it (the cat's forehead) grows it.
    a.click(250.0, 60.0)
    assert a.state("s.current.maskFrom.resultId") == seed["resultId"], "the proposal's logits were not fed back"
    a.page.locator("#stage").focus()
    a.page.keyboard.press("Enter")
    a.page.wait_for_function(
        f"() => maskloop.annotations.some((x) => x.id === {target['id']} && x.status === 'accepted')"
    )
    a.idle()

    saved = annotations(a)[target["id"]]
    after = rle_mask(saved["segmentation"])
    assert saved["status"] == "accepted" and saved["stage"] == "semi"
    assert saved["category_id"] == a.state("s.categoryId")
    assert saved["clicks"] == 1 and saved["seconds"] > 0
    assert after[60, 250] and not before[60, 250] and mask_iou(after, before) < 0.9, "the segmentation did not change"
    assert a.page.locator(f"#annotation-list li[data-annotation-id='{target['id']}']").count() == 1
    assert a.page.locator(f"#proposal-list li[data-annotation-id='{target['id']}']").count() == 0

    # The same two steps in Python: the grid point alone, then both points with its logits fed back.
    prompts = saved["prompts"]
    assert prompts["points"][0] == [gx, gy, 1] and prompts["points"][1][2] == 1
    decoder = OnnxDecoder(a.server.onnx_dir(), prompts["decoder"])
    embedding = a.server.embedding(a.server.image_id(a.file_name))
    points = np.array([p[:2] for p in prompts["points"]], float)
    first = decoder.predict(embedding, CAT_HW, points[:1], np.ones(1), None, None)
    assert mask_iou(first.masks[prompts["seed_candidate"]], before) > 0.85
    ref = decoder.predict(
        embedding, CAT_HW, points, np.ones(2), None, first.low_res_logits[prompts["seed_candidate"]]
    ).masks[prompts["candidate"]]
    assert mask_iou(after, ref) >= 0.95

    # A proposal without its grid point (made elsewhere): its mask stands for the logits.
    other = next(p for p in proposals if p["id"] != target["id"] and p["area"] < 20000)
    patch(a, other["id"], {"prompts": None})
    a.page.reload()
    a.wait_ready()
    a.page.click(f"#proposal-list li[data-annotation-id='{other['id']}'] button[data-action=refine]")
    a.idle()
    assert a.state("s.current") is None and a.state("!!s.editing.lowRes") is True
    ox, oy, ow, oh = other["bbox"]
    a.click(ox + ow / 2, oy + oh / 2)
    assert a.state("!!s.current.maskFrom.lowRes") is True
    a.page.locator("#stage").focus()
    a.page.keyboard.press("Enter")
    a.page.wait_for_function(
        f"() => maskloop.annotations.some((x) => x.id === {other['id']} && x.status === 'accepted')"
    )
    a.idle()
    assert annotations(a)[other["id"]]["status"] == "accepted"


def patch(a: Annotator, annotation_id: int, body: dict) -> dict:
    import urllib.request

    request = urllib.request.Request(
        f"{a.server.url}/api/annotations/{annotation_id}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="PATCH",
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())


def test_web_uncovered_area_drops_after_accepting(engine):
    a = engine
    a.create_category("cat", "#ff8800")
    a.page.locator("#stage").focus()
    a.key("u")
    assert a.page.locator("#uncovered").inner_text() == "uncovered: 100 %"
    hatched = a.overlay("annotations") > 0
    xs, ys = a.screen_to_image_grid(hatched.shape)
    image = mask_in_screen(np.ones(CAT_HW, bool), xs, ys)
    assert hatched[image].mean() > 0.99 and hatched[~image].mean() < 0.01, "the uncovered area is not the whole image"

    proposals = propose(a)
    a.page.locator("#stage").focus()
    a.key("a")  # the most confident proposal
    accepted = proposals[0]
    want = 100 * (1 - accepted["area"] / (CAT_HW[0] * CAT_HW[1]))
    text = a.page.locator("#uncovered").inner_text()
    percent = float(re.fullmatch(r"uncovered: ([\d.]+) %", text).group(1))
    assert percent < 100 and abs(percent - want) <= 0.51, (text, want)

    # The hatch has gone from the accepted mask (its fill is all that is drawn there).
    rgba = layer_rgba(a, "annotations")
    inside = mask_in_screen(rle_mask(accepted["segmentation"]), xs, ys)
    outside = (
        image & ~inside & ~mask_in_screen(np.any([rle_mask(p["segmentation"]) for p in proposals], axis=0), xs, ys)
    )
    assert (rgba[inside][:, 0] > 200).mean() > 0.9, "the accepted mask is still hatched"
    if outside.sum() > 100:
        assert (rgba[outside][:, 3] > 0).mean() > 0.95, "the area no mask covers is not hatched"

    # Accept all: every proposal is accepted, and the uncovered area is what they leave.
    a.page.click("#accept-all-button")
    a.idle()
    stored = annotations(a)
    assert {x["status"] for x in stored.values()} == {"accepted"} and len(stored) == len(proposals)
    assert a.page.locator("#proposal-list li[data-annotation-id]").count() == 0
    union = np.any([rle_mask(x["segmentation"]) for x in stored.values()], axis=0)
    text = a.page.locator("#uncovered").inner_text()
    assert abs(float(re.fullmatch(r"uncovered: ([\d.]+) %", text).group(1)) - 100 * (1 - union.mean())) <= 0.51

    a.key("u")
    assert a.page.locator("#uncovered").inner_text() == ""
    assert a.page.locator("#show-uncovered").is_checked() is False


def test_web_propose_settings_and_errors(engine):
    """The grid setting (URL parameter, input, server default) and failures, with the route stubbed."""
    a = engine
    bodies = []
    replies = [
        (201, {"created": 0, "ids": [], "generated": 3}),
        (422, {"error": "the embedding of image 1 is not ready"}),
    ]

    def fake(route):
        bodies.append(route.request.post_data)
        status, body = replies.pop(0)
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    a.page.route("**/api/images/*/propose", fake)
    assert a.page.input_value("#propose-points") == str(GRID)
    a.page.fill("#propose-points", "")  # empty: the server's default grid
    a.page.locator("#stage").focus()
    a.key("g")
    assert json.loads(bodies[-1]) == {}
    assert a.page.locator("#propose-status").inner_text().startswith("no new proposals (3 already on the image)")

    a.page.fill("#propose-points", "9")
    a.page.click("#propose-button")
    a.idle()
    assert json.loads(bodies[-1]) == {"points_per_side": 9}
    assert "proposing failed" in a.page.locator("#propose-status").inner_text()
    assert "the embedding of image 1 is not ready" in a.page.locator("#errors").inner_text()

    a.page.fill("#propose-points", "100")
    a.page.click("#propose-button")
    assert len(bodies) == 2, "an out-of-range grid was sent"
    assert "from 1 to 64" in a.page.locator("#errors").inner_text()
