"""The brush and the eraser (issue 23): strokes on the current mask in Chromium, saved at full
resolution, one undo step each, kept by a later click.

``MASKLOOP_SCREENSHOT_DIR`` keeps a screenshot of the brushed and erased mask there (brush.png).
The reference is the page's own clicked mask, saved first; the strokes' geometry is what the
page recorded (image frame, radius in image pixels). Pixels within 1.5 px of a stroke's edge are
not compared: the browser's and OpenCV's rasterisations of a round pen differ by a pixel there.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from test_web_page import CAT_POINT, rle_mask

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EDGE = 1.5  # px either side of a stroke's edge left uncompared


def stroke_distance(stroke: dict, hw: tuple[int, int]) -> np.ndarray:
    """Distance (image px, at pixel centres) of every pixel from the stroke's centre line."""
    line = np.full(hw, 255, np.uint8)
    pts = np.array(stroke["points"], float).reshape(-1, 2)
    scale = 8  # sub-pixel line: cv2 draws at 1/8 px
    cv2.polylines(line, [np.round((pts - 0.5) * scale).astype(np.int32)], False, 0, 1, cv2.LINE_8, shift=3)
    if len(pts) == 1:
        line[int(pts[0, 1]), int(pts[0, 0])] = 0
    return cv2.distanceTransform(line, cv2.DIST_L2, 5)


def drag(a, path: list[tuple[float, float]]) -> None:
    """A left drag through image points, as a person moves the mouse; waits for the stroke."""
    n = len(a.state("(s.current && s.current.strokes) || []"))
    xy = [a.client_xy(x, y) for x, y in path]
    a.page.mouse.move(*xy[0])
    a.page.mouse.down()
    for x, y in xy[1:]:
        a.page.mouse.move(x, y, steps=8)
    a.page.mouse.up()
    a.page.wait_for_function(f"() => (maskloop.current && maskloop.current.strokes || []).length > {n}")
    a.idle()


def test_web_brush_and_eraser_edit_the_mask_at_full_resolution(annotator, live, tmp_path):
    a = annotator
    a.goto("cat_brush.jpg")
    a.create_category("cat", "#ff8800")
    a.click(*CAT_POINT)
    clicked = rle_mask(a.accept())  # the clicked mask alone
    hw = clicked.shape
    assert not clicked[50:210, 400:445].any(), "the brush strip must lie outside the cat"

    a.click(*CAT_POINT)  # the same object again: the same mask
    a.key("b")
    assert a.state("s.tool") == "brush"
    drag(a, [(420, 60), (426, 130), (420, 200)])  # a strip outside the cat
    a.key("e")
    assert a.state("s.tool") == "erase"
    drag(a, [(250, 60), (252, 140), (250, 230)])  # a strip across it
    brush, erase = a.state("s.current.strokes")
    assert (brush["mode"], erase["mode"]) == ("brush", "erase")
    assert clicked[np.round(erase["points"][1::2]).astype(int), np.round(erase["points"][::2]).astype(int)].any()

    # One undo step per stroke; redo brings them back.
    a.key("Control+z")
    assert [s["mode"] for s in a.state("s.current.strokes")] == ["brush"]
    a.key("Control+z")
    assert a.state("(s.current.strokes || []).length") == 0
    a.key("Control+Shift+z")
    a.key("Control+Shift+z")
    assert [s["mode"] for s in a.state("s.current.strokes")] == ["brush", "erase"]

    a.page.mouse.move(*a.client_xy(330, 150))  # the eraser's ring on the picture
    folder = os.environ.get("MASKLOOP_SCREENSHOT_DIR") or str(tmp_path)  # a person looks at it
    a.page.screenshot(path=os.path.join(folder, "brush.png"))
    a.key("Escape")  # back to clicking; the object stays
    assert a.state("s.tool") == "prompt" and a.state("s.current.strokes.length") == 2
    saved = a.accept()
    edited = rle_mask(saved)
    d_brush, d_erase = stroke_distance(brush, hw), stroke_distance(erase, hw)
    r_brush, r_erase = brush["radius"], erase["radius"]
    painted = d_brush <= r_brush - EDGE
    erased = d_erase <= r_erase - EDGE
    assert painted.sum() > 200 and erased.sum() > 200
    assert edited[painted].all(), "the saved mask lacks part of the brush strip"
    assert not edited[erased].any(), "the saved mask keeps part of the erased strip"
    away = (d_brush >= r_brush + EDGE) & (d_erase >= r_erase + EDGE)
    assert (edited[away] == clicked[away]).all(), "the mask changed away from the strokes"
    # Provenance: the strokes are stored with the prompts.
    edits = saved["prompts"]["edits"]
    assert [s["mode"] for s in edits] == ["brush", "erase"] and edits[0]["radius"] == round(r_brush, 1)


def test_web_click_after_a_stroke_keeps_it(annotator, live):
    a = annotator
    a.goto("cat_brush_click.jpg")
    a.click(*CAT_POINT)
    a.key("b")
    drag(a, [(420, 60), (420, 200)])
    (brush,) = a.state("s.current.strokes")
    a.key("Escape")
    a.click(250.0, 200.0)  # a second foreground point on the cat, after the stroke
    assert len(a.state("s.current.prompt.points")) == 2
    assert len(a.state("s.current.strokes")) == 1, "the click dropped the stroke"
    saved = rle_mask(a.accept())
    painted = stroke_distance(brush, saved.shape) <= brush["radius"] - EDGE
    assert painted.sum() > 100 and saved[painted].all()


def test_web_brush_without_a_mask_says_so(annotator, live):
    a = annotator
    a.goto("cat_brush_click.jpg")
    a.key("b")
    cx, cy = a.client_xy(60, 60)
    a.page.mouse.move(cx, cy)
    a.page.mouse.down()
    a.page.mouse.move(cx + 40, cy, steps=4)
    a.page.mouse.up()
    assert "click on an object first" in a.page.inner_text("#errors")
    assert a.state("s.current") is None


def test_web_brush_on_a_reopened_accepted_mask_saves_it_painted(annotator, live):
    """Select an accepted mask (edit), paint on it, Enter: the same annotation now holds the strip
    and is otherwise the mask that was stored."""
    a = annotator
    a.goto("cat_brush_edit.jpg")
    a.click(*CAT_POINT)
    first = a.accept()
    stored = rle_mask(first)
    a.page.click(f"#annotation-list li[data-annotation-id='{first['id']}'] button:has-text('edit')")
    a.idle()
    assert a.state("s.editing && s.editing.annotation.id") == first["id"]
    a.key("b")
    drag(a, [(420, 60), (420, 200)])
    (brush,) = a.state("s.current.strokes")
    a.key("Escape")
    a.page.locator("#stage").focus()
    a.page.keyboard.press("Enter")
    a.page.wait_for_function(
        f"() => maskloop.annotations.some(x => x.id === {first['id']} && x.area !== {first['area']}) && !maskloop.editing"
    )
    a.idle()
    (saved,) = [x for x in a.state("s.annotations") if x["id"] == first["id"]]
    edited = rle_mask(saved)
    d = stroke_distance(brush, edited.shape)
    painted, away = d <= brush["radius"] - EDGE, d >= brush["radius"] + EDGE
    assert painted.sum() > 100 and edited[painted].all()
    assert (edited[away] == stored[away]).all(), "the stored mask changed away from the stroke"


def cleaned(mask: np.ndarray, limit: int) -> np.ndarray:
    """OpenCV's reference of I then O: parts (8-connected) and then holes (4-connected, not on
    the border) smaller than ``limit`` pixels dropped / filled."""
    mask = mask.astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    mask = np.isin(labels, 1 + np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= limit)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - mask, connectivity=4)
    edge = set(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]).tolist())
    holes = [i for i in range(1, n) if i not in edge and stats[i, cv2.CC_STAT_AREA] < limit]
    return mask.astype(bool) | np.isin(labels, holes)


def set_limit(a, field: str, value: str) -> None:
    a.page.fill(f"#{field}", value)
    a.page.locator(f"#{field}").dispatch_event("change")


def test_web_cleanups_each_one_key_and_one_undo_step(annotator, live):
    a = annotator
    a.goto("cat_clean.jpg")
    set_limit(a, "min-hole-px", "2000")
    set_limit(a, "min-island-px", "2000")
    a.page.wait_for_function(
        "() => fetch('/api/settings/cleanup').then(r => r.json()).then(s => s.min_hole_px === 2000 && s.min_island_px === 2000)"
    )
    a.click(*CAT_POINT)
    clicked = rle_mask(a.accept())
    assert not clicked[230:270, 410:450].any() and clicked[130:170, 130:170].all()

    a.click(*CAT_POINT)
    a.key("b")
    drag(a, [(430, 250), (431, 250)])  # an island, away from the cat
    a.key("e")
    drag(a, [(150, 150), (151, 150)])  # a hole, inside it
    island, hole = a.state("s.current.strokes")
    a.key("i")
    a.key("o")
    modes = [e["mode"] for e in a.state("s.current.edits")]
    assert modes == ["brush", "erase", "dropIslands", "fillHoles"]
    a.key("Control+z")
    assert len(a.state("s.current.edits")) == 3
    a.key("Control+Shift+z")
    a.key("Escape")
    saved = a.accept()
    mask = rle_mask(saved)
    hw = mask.shape
    near = (stroke_distance(island, hw) < island["radius"] + EDGE) | (stroke_distance(hole, hw) < hole["radius"] + EDGE)
    assert not mask[stroke_distance(island, hw) <= island["radius"]].any(), "the island was not dropped"
    assert mask[stroke_distance(hole, hw) <= hole["radius"]].all(), "the hole was not filled"
    assert (mask[~near] == cleaned(clicked, 2000)[~near]).all()
    assert [e["mode"] for e in saved["prompts"]["edits"]] == modes
    assert saved["prompts"]["edits"][2]["min_px"] == 2000

    # "on accept": Enter fills and drops before saving (then the setting goes back for other tests).
    a.page.check("#clean-on-accept")
    a.page.wait_for_function("() => fetch('/api/settings/cleanup').then(r => r.json()).then(s => s.on_accept)")
    try:
        a.page.reload()
        a.wait_ready()
        a.click(*CAT_POINT)
        a.key("b")
        drag(a, [(430, 250), (431, 250)])
        a.key("Escape")
        saved = a.accept()
        mask = rle_mask(saved)
        assert not mask[stroke_distance(island, hw) <= island["radius"]].any()
        assert [e["mode"] for e in saved["prompts"]["edits"]] == ["brush", "fillHoles", "dropIslands"]
    finally:
        a.page.uncheck("#clean-on-accept")
        set_limit(a, "min-hole-px", "100")
        set_limit(a, "min-island-px", "100")
        a.page.wait_for_function(
            "() => fetch('/api/settings/cleanup').then(r => r.json()).then(s => !s.on_accept && s.min_hole_px === 100 && s.min_island_px === 100)"
        )
