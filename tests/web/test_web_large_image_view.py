"""A large image in the page: shown as a tile pyramid, the finer level fetched on zoom, only the
tiles in view, and the minimap moves the view (real server, real Chromium)."""

from __future__ import annotations

import fcntl
import re
from pathlib import Path

import pytest
from support.large_images import write_large_jpeg
from support.live_server import LiveServer
from web_harness import VIEWPORT

W, H = 8000, 6000
TOP = 13  # 2**13 = 8192 >= 8000
TILE_URL = re.compile(r"/pyramid/(\d+)/(\d+)_(\d+)\.jpg")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "large-image.png"


@pytest.fixture(scope="module")
def large_live(tmp_path_factory, web_cache):
    data = tmp_path_factory.mktemp("large-data")
    write_large_jpeg(data / "aerial.jpg", W, H)
    with open(web_cache / ".export.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = LiveServer(
            data, tmp_path_factory.mktemp("large-work"), cache=web_cache, env={"MASKLOOP_PRECOMPUTE": "false"}
        )
    try:
        yield server
    finally:
        server.stop()


def test_a_large_image_shows_tiles_zooms_to_finer_ones_and_the_minimap_moves_the_view(browser, large_live):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    fetched: list[tuple[int, int, int]] = []
    page.on("request", lambda r: (m := TILE_URL.search(r.url)) and fetched.append(tuple(map(int, m.groups()))))
    image_id = large_live.image_id("aerial.jpg")
    page.goto(f"{large_live.url}/#image={image_id}")
    try:
        # the fitted view: a coarse level's tiles are drawn, and no full-resolution tile is asked for
        page.wait_for_function("() => Number(document.getElementById('stage').dataset.tilesDrawn) > 0", timeout=120_000)
        fit_level = int(page.get_attribute("#stage", "data-tile-level"))
        # the decoder (its wasm compiled on the same cores) started only once this first view showed
        page.wait_for_function("() => maskloop.ready", timeout=120_000)
        timeline = page.evaluate("maskloop.timeline()")
        assert timeline["picture shown"] <= timeline["decoder started"] <= timeline["decoder ready"], timeline
        assert fit_level < TOP - 2
        assert fetched and max(level for level, _, _ in fetched) == fit_level
        page.locator("#minimap").wait_for(state="visible")

        # 1:1 (Z) about the centre: the full-resolution level is fetched (only tiles in view) and drawn
        page.locator("#stage").focus()
        page.keyboard.press("z")
        page.wait_for_function(
            f"() => document.getElementById('stage').dataset.tileLevel === '{TOP}' && "
            "Number(document.getElementById('stage').dataset.tilesDrawn) > 0",
            timeout=120_000,
        )
        top_tiles = {(c, r) for level, c, r in fetched if level == TOP}
        assert 0 < len(top_tiles) <= 12, top_tiles  # a 1280x800 page at 1:1 sees at most 4x3 tiles
        cols = {c for c, _ in top_tiles}
        assert min(cols) >= 6 and max(cols) <= 9  # around the centre column (7.8 of 16)
        view = page.evaluate("() => maskloop.view")
        assert view["scale"] == pytest.approx(1.0)

        # a click on the minimap near the bottom-right corner centres the view there
        box = page.locator("#minimap").bounding_box()
        page.mouse.click(box["x"] + 0.9 * box["width"], box["y"] + 0.85 * box["height"])
        view = page.evaluate("() => maskloop.view")
        stage = page.locator("#stage").bounding_box()
        centre_x = (stage["width"] / 2 - view["tx"]) / view["scale"]
        centre_y = (stage["height"] / 2 - view["ty"]) / view["scale"]
        assert centre_x == pytest.approx(0.9 * W, abs=W * 0.02)
        assert centre_y == pytest.approx(0.85 * H, abs=H * 0.02)
        page.wait_for_function("() => Number(document.getElementById('stage').dataset.tilesDrawn) >= 4", timeout=60_000)
        moved = {(c, r) for level, c, r in fetched if level == TOP} - top_tiles
        assert moved and min(c for c, _ in moved) >= 12 and min(r for _, r in moved) >= 8
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.keyboard.press("-")
        page.keyboard.press("-")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SCREENSHOT))
        assert not errors, errors
    finally:
        context.close()
