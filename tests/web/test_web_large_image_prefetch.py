"""Tile embeddings the page asks for on its own on a 9000x6000 picture (issue 24): a hover sweep
over many tiles not embedded yet fetches one at a time, the latest resting point waiting
(web/js/guess.js), and a view that comes to rest zoomed in fetches the tiles clicks in view go to,
its centre's first, before any click (web/js/tile-prefetch.js)."""

from __future__ import annotations

import time

import pytest
from web_harness import LARGE_SCENE, VIEWPORT, Annotator, large_scene_server

from maskloop.tiles import Tiling, route_prompt, tile_grid

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W, H = LARGE_SCENE


@pytest.fixture(scope="module")
def large(tmp_path_factory, web_cache):
    with large_scene_server(tmp_path_factory, web_cache, seed=5, quality=90) as (server, _):
        yield server


class TileRequests:
    """The page's ``/embedding?tile=`` requests: each tile asked for, and the most at once."""

    def __init__(self, page) -> None:
        self.started: list[tuple[float, str]] = []
        self.open = 0
        self.most_open = 0
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    @staticmethod
    def _tile(request) -> str | None:
        url = request.url
        return url.split("?tile=")[1] if "/embedding?tile=" in url else None

    def _start(self, request) -> None:
        if tile := self._tile(request):
            self.started.append((time.monotonic(), tile))
            self.open += 1
            self.most_open = max(self.most_open, self.open)

    def _end(self, request) -> None:
        if self._tile(request):
            self.open -= 1

    def settle(self, page, quiet_s: float = 3.0, timeout_s: float = 180.0) -> None:
        """Wait until no tile request is open and none has started for ``quiet_s`` (counted from this
        call at the earliest: a prefetch starts 400 ms after the view settles)."""
        called = time.monotonic()
        end = called + timeout_s
        while time.monotonic() < end:
            page.wait_for_timeout(250)
            last = max(self.started[-1][0] if self.started else 0.0, called)
            if self.open == 0 and time.monotonic() - last > quiet_s:
                return
        raise AssertionError(f"tile requests did not settle: {self.open} open, {len(self.started)} started")


def test_web_a_hover_sweep_over_many_tiles_fetches_one_tile_at_a_time(browser, large):
    context = browser.new_context(viewport=VIEWPORT)
    a = Annotator(context.new_page(), large)
    try:
        tiles = TileRequests(a.page)
        a.goto("field.jpg")
        a.page.locator("#stage").focus()
        a.page.keyboard.press("v")  # the hover preview: a resting pointer decodes there
        assert a.state("s.hoverPreview") is True
        grid = tile_grid(W, H, Tiling())
        centres = [((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in grid[:: max(1, len(grid) // 24)]]
        for x, y in centres:  # rests of 100 ms: long enough for the preview (50 ms), far less than a tile
            a.page.mouse.move(*a.client_xy(x, y), steps=2)
            a.page.wait_for_timeout(100)
        swept = time.monotonic()
        tiles.settle(a.page)
        assert a.state("s.guesses")["hover"]["started"] >= 1
        assert tiles.most_open == 1, f"tile embeddings fetched at once: {tiles.most_open}"
        after = [tile for t, tile in tiles.started if t > swept]
        assert len(after) <= 1, f"more than the latest resting point waited: {after}"
        assert len(tiles.started) <= len(centres) // 2, f"{len(tiles.started)} tiles for {len(centres)} rests"
        assert not a.errors, f"the page threw: {a.errors}"
    finally:
        context.close()


def test_web_a_view_at_rest_zoomed_in_prefetches_its_tiles_before_the_click(browser, large):
    """Zoomed in to about 1:1 (the view ~1000 x 600 image pixels), the view at rest fetches the tile
    under its centre first, then other tiles clicks in view are routed to (at most 4), each once;
    a click in view then finds its tile in the page: the server is not asked again."""
    context = browser.new_context(viewport=VIEWPORT)
    a = Annotator(context.new_page(), large)
    try:
        tiles = TileRequests(a.page)
        a.goto("field.jpg")
        a.page.wait_for_timeout(1500)
        assert tiles.started == [], "a tile was prefetched with the whole picture in view"
        a.page.mouse.move(*a.client_xy(6100.0, 2300.0))
        for _ in range(7):
            a.page.mouse.wheel(0, -240)
        a.idle()
        view = a.state("s.view")
        assert 0.7 <= view["scale"] <= 3, f"the wheel did not zoom in to about 1:1 ({view['scale']})"
        box = a.page.locator("#stage").bounding_box()

        def image_xy(sx: float, sy: float) -> tuple[float, float]:
            return (sx - view["tx"]) / view["scale"], (sy - view["ty"]) / view["scale"]

        def tile_of(x: float, y: float) -> str:
            return ",".join(str(v) for v in route_prompt([[x, y]], None, W, H, Tiling()).region)

        cx, cy = image_xy(box["width"] / 2, box["height"] / 2)
        in_view = {
            tile_of(*image_xy(box["width"] * i / 20, box["height"] * j / 20)) for i in range(21) for j in range(21)
        }
        assert len(in_view) >= 2, f"the view should reach more than one tile: {in_view}"
        tiles.settle(a.page)
        started = [tile for _, tile in tiles.started]
        assert started and started[0] == tile_of(cx, cy), f"not the centre's tile first: {started}"
        assert len(started) == len(set(started)), f"a tile fetched twice: {started}"
        assert 2 <= len(started) <= 4, f"tiles prefetched: {started}"
        assert set(started) <= in_view, f"a tile no click in view is routed to: {set(started) - in_view}"
        assert a.state("s.latencyCount") == 0  # before any click
        a.click(cx, cy)  # finds the tile's embedding in the worker: the server is not asked again
        assert [tile for _, tile in tiles.started] == started
        assert not a.errors, f"the page threw: {a.errors}"
    finally:
        context.close()
