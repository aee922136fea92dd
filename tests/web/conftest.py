"""Fixtures of the browser tests: one live ``maskloop serve`` on a temp folder of images, Debian's
Chromium under Playwright, and an ``annotator`` that drives the page.

Each test works on its own image (copies of one photo share one embedding, so they cost
nothing extra), so tests do not see each other's masks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from web_harness import (  # noqa: E402
    CAT_COPIES,
    CHROMIUM,
    VIEWPORT,
    Annotator,
    LiveServer,
    copy_images,
    launch_chromium,
    make_marks,
    make_rotated_marks,
    start_server,
)


@pytest.fixture(scope="session")
def live(tmp_path_factory, web_cache) -> LiveServer:
    """``maskloop serve`` on a temp folder of the tests' images."""
    data = tmp_path_factory.mktemp("web-data")
    copy_images(data, {name: "chelsea.jpg" for name in CAT_COPIES})
    copy_images(data, {"coffee.jpg": "coffee.jpg", "exif_rotated_chelsea.jpg": "exif_rotated_chelsea.jpg"})
    make_marks(data / "marks.png")
    make_rotated_marks(data / "marks_rotated.jpg")
    server = start_server(data, tmp_path_factory.mktemp("web-work"), web_cache)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def annotator(browser, live):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    driver = Annotator(page, live)
    yield driver
    context.close()
    assert not driver.errors, f"the page threw: {driver.errors}"


@pytest.fixture(scope="session")
def decoder_for(live):
    """OnnxDecoder of the server's exported decoder, by precision ("fp32" / "int8")."""
    from maskloop.exporter.decoder_runtime import OnnxDecoder

    cache = {}

    def get(precision: str) -> OnnxDecoder:
        if precision not in cache:
            cache[precision] = OnnxDecoder(live.onnx_dir(), precision)
        return cache[precision]

    return get
