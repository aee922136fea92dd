"""The page follows the server's model version: a trained decoder is picked up without a reload,
keeping the object in progress, and accepted masks record the version that made them."""

from __future__ import annotations

import time

import pytest
from web_harness import VIEWPORT, Annotator, post_json, start_server, texture_project

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def texture_server(tmp_path_factory, web_cache):
    data, work = texture_project(tmp_path_factory, "versions", 3, seed=31)
    server = start_server(data, work, web_cache)
    try:
        yield server
    finally:
        server.stop()


def test_web_page_switches_to_a_new_version_without_reload(browser, texture_server):
    server = texture_server
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    annotator = Annotator(page, server)
    try:
        annotator.goto("texture_000.png")
        assert annotator.state("s.modelVersion") == "base"
        annotator.click(256, 256)
        prompt_before = annotator.prompt()
        assert prompt_before["points"]

        post_json(server, "/api/train", {"steps": 3, "eval_clicks": 5, "holdout": 0.34, "force": True})
        deadline = time.monotonic() + 600
        while (state := server.get_json("/api/train"))["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert state["state"] == "done", state

        page.wait_for_function("() => maskloop.modelVersion === 'v0001'", timeout=30_000)
        annotator.idle()
        assert page.locator("#st-version").text_content() == "model v0001"  # in the closed diagnostics popover
        assert annotator.prompt() == prompt_before, "the object in progress must survive the switch"
        assert annotator.state("s.maskShown && s.current.done")
        assert annotator.state("s.versionSwitches.map(v => v.to)") == ["v0001"]
        assert annotator.state("s.decoderInfo.split"), "a trained version runs the split (prefix + prompt) decoder too"

        # rollback: the page follows within the poll interval plus a decoder load
        t0 = time.monotonic()
        post_json(server, "/api/models/active", {"version": "base"})
        page.wait_for_function("() => maskloop.modelVersion === 'base'", timeout=10_000)
        annotator.idle()
        print(f"\npage switched to the rolled-back version {time.monotonic() - t0:.2f} s after the API call")
        assert annotator.prompt() == prompt_before

        annotator.create_category("blob")
        saved = annotator.accept()
        assert saved["model_version"] == "base"
        assert not annotator.errors, annotator.errors
    finally:
        context.close()
