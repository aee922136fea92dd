"""Polygon editing in Chromium (issue 23): an accepted mask opened as polygons, a vertex dragged,
one deleted, one inserted, saved: the stored mask is exactly the edited rings filled.
``MASKLOOP_SCREENSHOT_DIR`` keeps a screenshot of the edited polygons there (polygon.png)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_web_page import CAT_POINT, rle_mask

from maskloop.masks import mask_iou
from maskloop.server.jobs.polygons import rings_to_mask

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_web_polygon_drag_delete_insert_save(annotator, live, tmp_path):
    a = annotator
    a.goto("cat_polygon.jpg")
    a.click(*CAT_POINT)
    first = a.accept()
    stored = rle_mask(first)
    h, w = stored.shape
    a.page.click(f"#annotation-list li[data-annotation-id='{first['id']}'] button[data-action='polygon']")
    a.page.wait_for_function("() => maskloop.polygon && maskloop.polygon.rings.length > 0")
    assert a.page.is_visible("#polygon-bar")
    rings = a.state("s.polygon.rings")
    assert mask_iou(rings_to_mask(rings, h, w).astype(bool), stored) > 0.98, "the polygons do not outline the mask"
    outer = max(range(len(rings)), key=lambda r: 0 if rings[r]["hole"] else len(rings[r]["points"]))
    pts = np.array(rings[outer]["points"]).reshape(-1, 2)
    n = len(pts)

    # Drag the vertex nearest to (330, 150) (the cat's right side) 40 px to the right.
    k = int(np.argmin(np.hypot(pts[:, 0] - 330, pts[:, 1] - 150)))
    x, y = pts[k]
    a.page.mouse.move(*a.client_xy(x, y))
    a.page.mouse.down()
    a.page.mouse.move(*a.client_xy(x + 40, y), steps=6)
    a.page.mouse.up()
    dragged = a.state(f"s.polygon.rings[{outer}].points")
    assert abs(dragged[2 * k] - (x + 40)) <= 1 and abs(dragged[2 * k + 1] - y) <= 1

    # Delete another vertex (right-click) and insert one on an edge (double-click its middle).
    j = (k + n // 2) % n
    a.page.mouse.click(*a.client_xy(*pts[j]), button="right")
    assert len(a.state(f"s.polygon.rings[{outer}].points")) == 2 * (n - 1)
    after = np.array(a.state(f"s.polygon.rings[{outer}].points")).reshape(-1, 2)
    mid = (after[0] + after[1]) / 2
    a.page.mouse.dblclick(*a.client_xy(*mid))
    assert len(a.state(f"s.polygon.rings[{outer}].points")) == 2 * n

    edited = a.state("s.polygon.rings")
    folder = os.environ.get("MASKLOOP_SCREENSHOT_DIR") or str(tmp_path)  # a person looks at it
    a.page.screenshot(path=os.path.join(folder, "polygon.png"))
    a.page.locator("#stage").focus()
    a.page.keyboard.press("Enter")
    a.page.wait_for_function(
        f"() => !maskloop.polygon && maskloop.annotations.some(x => x.id === {first['id']} && x.area !== {first['area']})"
    )
    a.idle()
    (saved,) = [x for x in a.state("s.annotations") if x["id"] == first["id"]]
    mask = rle_mask(saved)
    assert np.array_equal(mask, rings_to_mask(edited, h, w).astype(bool)), "the saved mask is not the edited rings"
    assert mask[int(y), int(x) + 20] and not stored[int(y), int(x) + 20], "the dragged vertex did not move the outline"
    assert saved["prompts"]["edits"][-1]["mode"] == "polygon"
    assert (a.overlay("annotations") > 0).sum() > 10_000, "the saved mask is not drawn"


def test_web_polygon_esc_leaves_the_mask(annotator, live):
    a = annotator
    a.goto("cat_polygon.jpg")
    (first,) = [x for x in a.state("s.annotations")][:1]
    a.page.click(f"#annotation-list li[data-annotation-id='{first['id']}'] button[data-action='polygon']")
    a.page.wait_for_function("() => maskloop.polygon !== null")
    a.page.locator("#stage").focus()
    a.page.keyboard.press("Escape")
    assert a.state("s.polygon") is None and not a.page.is_visible("#polygon-bar")
    assert live.get_json(f"/api/annotations/{first['id']}")["segmentation"] == first["segmentation"]
