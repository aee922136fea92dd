"""Categories managed in the page (issue 27): reorder with the row's arrows (the number keys follow),
delete an unused one, and delete a used one after choosing where its masks move."""

from __future__ import annotations

import os
from pathlib import Path

from web_harness import VIEWPORT, Annotator, copy_images, start_server

CAT_POINT = (250.0, 150.0)  # between the cat's eyes (chelsea.jpg, 451x300)


def names(a: Annotator) -> list[str]:
    return a.page.locator("#category-list li .name").all_inner_texts()


def test_web_reorder_and_delete_categories(browser, web_cache, tmp_path):
    data = copy_images(tmp_path / "data", {"cat.jpg": "chelsea.jpg"})
    server = start_server(data, tmp_path / "work", web_cache)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        a = Annotator(context.new_page(), server)
        a.goto("cat.jpg")
        for name in ("animal", "pet", "thing"):
            a.create_category(name)
        a.page.locator("#category-list li", has_text="animal").click()
        a.click(*CAT_POINT)
        mask = a.accept()
        ids = {c["name"]: c["id"] for c in server.get_json("/api/categories")}
        assert mask["category_id"] == ids["animal"]

        a.page.locator("#category-list li", has_text="animal").locator("button[title='move down']").click()
        a.page.wait_for_function("() => document.querySelector('#category-list li .name').textContent === 'pet'")
        assert names(a) == ["pet", "animal", "thing"]
        assert [c["name"] for c in server.get_json("/api/categories")] == ["pet", "animal", "thing"]
        a.page.locator("#stage").focus()
        a.page.keyboard.press("1")
        assert a.state("s.categoryId") == ids["pet"]  # the number keys follow the order

        a.page.locator("#category-list li", has_text="thing").locator("button.delete").click()
        a.page.wait_for_function("() => document.querySelectorAll('#category-list li').length === 2")
        assert "thing" not in names(a)

        a.page.locator("#category-list li", has_text="animal").locator("button.delete").click()
        form = a.page.locator("#category-list .move-masks")
        form.wait_for()
        assert 'masks of "animal" move to' in form.inner_text()
        if shots := os.environ.get("MASKLOOP_SCREENSHOT_DIR"):
            a.page.screenshot(path=str(Path(shots) / "categories.png"))
        form.locator("select").select_option(str(ids["pet"]))
        form.locator("button[type=submit]").click()
        a.page.wait_for_function("() => document.querySelectorAll('#category-list li').length === 1")
        a.idle()
        assert names(a) == ["pet"]
        assert server.get_json(f"/api/annotations/{mask['id']}")["category_id"] == ids["pet"]
        assert a.state("s.annotations")[0]["category_id"] == ids["pet"]
        assert not a.errors, a.errors
    finally:
        context.close()
        server.stop()
