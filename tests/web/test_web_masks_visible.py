"""Masks you can see and a bar of buttons (issue 27): the current mask has a white-and-black line,
accepted masks their category's outline ringed in black; the candidates read "1 2 3" with their
predicted quality in % and sit in the bar above the picture, never over it; undo / redo, zoom
(level shown, at most 3200%) and previous / next are buttons that name their keys; the image
list's header says how many images are done."""

from __future__ import annotations

import re

import numpy as np

CAT_POINT = (250.0, 150.0)  # between the cat's eyes (chelsea.jpg, 451x300)


def box(a, selector: str) -> dict:
    return a.page.locator(selector).bounding_box()


def test_web_masks_candidates_and_the_stage_bar(annotator, live):
    a = annotator
    a.goto("cat_outline.jpg")
    a.click(*CAT_POINT)

    # The current mask: a white edge with a black ring inside it, over a stronger fill.
    obj = a.canvas_rgb("object")
    alpha = a.overlay("object")
    opaque = alpha == 255
    assert (opaque & (obj.min(axis=2) == 255)).sum() > 200, "no white outline on the current mask"
    assert (opaque & (obj.max(axis=2) == 0)).sum() > 200, "no black ring inside the current mask's outline"

    # The candidates: "1 2 3" with a percentage and a tooltip, in the bar, not over the picture.
    buttons = a.page.locator("#candidates button")
    assert buttons.count() == 3
    texts = [buttons.nth(k).inner_text() for k in range(3)]
    assert all(re.fullmatch(rf"{k + 1}\s+\d{{1,3}}%", t) for k, t in enumerate(texts)), texts
    assert "%" in buttons.nth(0).get_attribute("title")
    bar, stage = box(a, "#candidates"), box(a, "#stage")
    assert bar["y"] + bar["height"] <= stage["y"] + 0.5, (bar, stage)

    # Accepted: the category's colour at the outline, a dark ring around it in screen pixels.
    a.create_category("outlined-cat", "#1e90ff")  # a name no other test of the shared server uses
    a.accept()
    rgb = a.canvas_rgb("annotations").astype(int)
    alpha = a.overlay("annotations")
    blue = (alpha > 200) & (rgb[..., 2] > 200) & (rgb[..., 0] < 80)
    dark = (alpha > 150) & (rgb.max(axis=2) < 60)
    assert blue.sum() > 200 and dark.sum() > 200, (blue.sum(), dark.sum())
    assert ((alpha > 200) & (rgb.min(axis=2) > 240)).sum() < 50, "an accepted mask looks like the current one"

    # The masks panel: the area in px, a delete button that says what it does.
    row = a.page.locator("#annotation-list li[data-annotation-id]").first
    assert re.search(r"\d+k? px", row.inner_text())
    assert row.locator("button.delete").inner_text() == "Delete"

    # Zoom buttons with the level shown, stopping at 3200%; Fit comes back.
    assert "(F)" in a.page.get_attribute("#zoom-fit", "title")
    assert "(P)" in a.page.get_attribute("#prev-image", "title")
    assert "(N)" in a.page.get_attribute("#next-image", "title")
    dpr = a.page.evaluate("devicePixelRatio")
    fitted = a.state("s.view.scale")
    level = a.page.inner_text("#zoom-level")
    assert level.endswith("%") and abs(float(level[:-1]) - fitted * dpr * 100) < 1, level
    for _ in range(40):  # 1.25x a click: from the fit to 32 takes fewer
        if a.page.locator("#zoom-in").is_disabled():
            break
        a.page.click("#zoom-in")
    a.idle()
    assert a.state("s.view.scale") == 32 and a.page.inner_text("#zoom-level") == f"{round(3200 * dpr)}%"
    assert a.page.locator("#zoom-in").is_disabled()
    a.page.click("#zoom-fit")
    a.idle()
    assert np.isclose(a.state("s.view.scale"), fitted)

    # The image list's header: n of N done, with a bar.
    images = live.get_json("/api/images")
    usable = [im for im in images if im["status"] != "error"]
    done = sum(im["status"] == "done" for im in usable)
    assert a.page.inner_text("#done-text") == f"{done} of {len(usable)} done"
    assert a.page.locator("#done-bar").is_visible()
    assert not a.errors, a.errors
