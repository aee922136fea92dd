"""A new user's first steps on a new folder (issue 27), with a screenshot per step: the page opens
"Ready", a click shows a mask and its candidates, the first Enter asks for the category's name,
a second object is saved at once, D marks the image done ("1 of 3 done"), and the page's
"COCO RLE" button downloads both masks. ``MASKLOOP_SCREENSHOT_DIR`` keeps the PNGs there."""

from __future__ import annotations

import json
import os
import re

from web_harness import VIEWPORT, Annotator, copy_images, start_server

CAT_POINT = (250.0, 150.0)  # between the cat's eyes (chelsea.jpg, 451x300)
FLOOR_POINT = (400.0, 280.0)  # the floor at the bottom right, outside the cat


def test_web_first_steps_on_a_new_folder(browser, web_cache, tmp_path):
    data = copy_images(tmp_path / "data", {"cat.jpg": "chelsea.jpg", "coffee.jpg": "coffee.jpg"})
    copy_images(data, {"astronaut.jpg": "astronaut.jpg"})
    server = start_server(data, tmp_path / "work", web_cache)
    folder = os.environ.get("MASKLOOP_SCREENSHOT_DIR") or str(tmp_path)
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)

    def shot(name: str) -> None:
        a.page.wait_for_timeout(150)  # the last frame painted
        a.page.screenshot(path=os.path.join(folder, name))

    def line() -> str:
        return a.page.inner_text("#st-line").strip()

    try:
        a = Annotator(context.new_page(), server)
        a.goto("cat.jpg")
        a.idle()
        assert line() == "Ready" and a.page.inner_text("#done-text") == "0 of 3 done"
        shot("step1-open.png")
        a.page.click("#diagnostics > summary")  # the engineering figures, in the "i" popover
        assert "ready" in a.page.inner_text("#st-decoder")
        shot("step1-diagnostics.png")
        a.page.click("#diagnostics > summary")

        a.click(*CAT_POINT)
        assert re.fullmatch(r"Mask in \d+ ms(: slower than usual)?", line())
        assert a.page.locator("#candidates button").count() == 3
        shot("step2-click.png")

        a.page.locator("#stage").focus()
        a.page.keyboard.press("Enter")
        a.page.wait_for_function("() => maskloop.askingCategory")
        a.page.fill("#first-category-name", "cat")
        shot("step3-name.png")
        a.page.keyboard.press("Enter")
        a.page.wait_for_function("() => maskloop.annotations.length === 1")
        a.idle()
        assert line() == "Saved"

        a.click(*FLOOR_POINT)
        a.page.mouse.move(5, VIEWPORT["height"] - 5)  # off the picture: no hover state
        shot("step4-second-object.png")  # the accepted cat's outline beside the current mask
        a.accept()
        a.page.locator("#stage").focus()
        a.key("d")
        a.page.wait_for_function("() => document.getElementById('done-text').textContent === '1 of 3 done'")
        shot("step5-done.png")

        with a.page.expect_download() as download:
            a.page.click("#export-rle")
        path = tmp_path / "coco.json"
        download.value.save_as(path)
        coco = json.loads(path.read_text())
        assert len(coco["annotations"]) == 2 and [c["name"] for c in coco["categories"]] == ["cat"]
        assert a.page.locator("#errors").inner_text().strip() == ""
        assert not a.errors, a.errors
    finally:
        context.close()
        server.stop()
