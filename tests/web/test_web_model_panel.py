"""The Model panel drives the loop from the page: Train now with a moving progress bar, Cancel,
Train again, the new version activates (by the gate, or by the panel's Activate) and the page's
next mask comes from it; a refused version shows its reason. Real server, model and Chromium."""

from __future__ import annotations

import pytest
from web_harness import VIEWPORT, Annotator, post_json, start_server, texture_project

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("skimage")

#: Steps of a run the panel starts (the server's default for a request that names none).
PANEL_STEPS = 30


@pytest.fixture(scope="module")
def panel_server(tmp_path_factory, web_cache):
    data, work = texture_project(tmp_path_factory, "panel", 4, seed=37)
    server = start_server(data, work, web_cache, env={"MASKLOOP_TRAIN_STEPS": str(PANEL_STEPS)})
    try:
        yield server
    finally:
        server.stop()


def bar_value(page) -> float:
    return float(page.eval_on_selector("#train-bar", "(el) => el.value"))


def test_train_cancel_train_activate_from_the_model_panel(browser, panel_server):
    server = panel_server
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    annotator = Annotator(page, server)
    try:
        annotator.goto("texture_000.png")
        page.wait_for_selector("#version-list li[data-version=base].current")

        # Train now: the bar appears and moves; Cancel stops the run and writes nothing
        page.click("#train-button")
        page.wait_for_selector("#train-progress:not([hidden])", timeout=30_000)
        page.wait_for_function("() => document.querySelector('#train-bar').value >= 1", timeout=300_000)
        first = bar_value(page)
        page.wait_for_function(f"() => document.querySelector('#train-bar').value > {first}", timeout=120_000)
        assert page.eval_on_selector("#train-bar", "(el) => el.max") == PANEL_STEPS
        assert f"of {PANEL_STEPS}" in page.inner_text("#train-text") and "left" in page.inner_text("#train-text")
        # a second page (or a reload) shows the same running job
        other = context.new_page()
        other.goto(server.url + "/")
        other.wait_for_selector("#train-progress:not([hidden])", timeout=60_000)
        other.close()
        page.click("#train-cancel")
        page.wait_for_selector("#train-decision:has-text('cancelled')", timeout=120_000)
        assert page.is_hidden("#train-progress")
        assert server.get_json("/api/train")["state"] == "cancelled"
        assert [v["version"] for v in server.get_json("/api/models")["versions"]] == ["base"]

        # Train again, to the end: the decision and the gate's reason show, with the version
        page.click("#train-button")
        page.wait_for_selector("#train-decision:has-text('v0001')", timeout=600_000)
        decision = server.get_json("/api/train")["decision"]
        assert page.inner_text("#train-decision") == f"v0001: {decision['reason']}"
        row = page.locator("#version-list li[data-version=v0001]")
        if decision["verdict"] == "refused":  # activate it by hand (what an admin may do)
            assert "refused" in row.locator(".badge").inner_text()
            row.locator("button:has-text('Activate')").click()
        page.wait_for_selector("#version-list li[data-version=v0001].current", timeout=30_000)
        page.wait_for_function("() => maskloop.modelVersion === 'v0001'", timeout=60_000)
        annotator.idle()

        # the page's next mask comes from the new version
        annotator.click(256, 256)
        annotator.create_category("patch")
        assert annotator.accept()["model_version"] == "v0001"

        # a run that cannot beat v0001 (one step from the base) is refused, and the panel says why
        post_json(server, "/api/train", {"steps": 1, "eval_clicks": 5})
        page.wait_for_selector("#train-decision:has-text('v0002: refused')", timeout=600_000)
        v2 = page.locator("#version-list li[data-version=v0002]")
        assert v2.locator(".badge").inner_text() == "refused"
        v2.locator("summary").click()
        assert v2.locator(".gate-table tr.decided").count() == 1
        assert page.is_visible("#version-list li[data-version=base] button:has-text('Roll back')")
        page.screenshot(path=str(server.log_path.parent / "model-panel.png"))
        assert not annotator.errors, annotator.errors
    finally:
        context.close()
