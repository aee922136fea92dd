"""1–10 mask ratings in the page (issue 26): with the pointer on a mask's row, a number key rates
it (0 gives 10); the row's menu shows the rating and the scale on hover; the server keeps it."""

from __future__ import annotations

from web_harness import VIEWPORT, Annotator, copy_images, start_server

CAT_POINT = (250.0, 150.0)  # between the cat's eyes (chelsea.jpg, 451x300)


def test_web_rate_a_mask_with_the_number_keys(browser, web_cache, tmp_path):
    data = copy_images(tmp_path / "data", {"cat.jpg": "chelsea.jpg"})
    server = start_server(data, tmp_path / "work", web_cache)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        a = Annotator(context.new_page(), server)
        a.goto("cat.jpg")
        a.create_category("cat")
        a.click(*CAT_POINT)
        mask = a.accept()
        row = a.page.locator(f"#annotation-list li[data-annotation-id='{mask['id']}']")
        menu = row.locator("select.rating")
        assert "1 — nonsense" in menu.get_attribute("title") and "10 — pixel-perfect" in menu.get_attribute("title")
        assert menu.input_value() == ""

        row.hover()  # the pointer on its row: the number keys rate it (and do not pick a category)
        a.page.keyboard.press("8")
        a.page.wait_for_function(f"() => maskloop.annotations.some(x => x.id === {mask['id']} && x.rating.mine === 8)")
        assert row.locator("select.rating").input_value() == "8"
        assert server.get_json(f"/api/annotations/{mask['id']}/rating")["ratings"][0]["rating"] == 8
        a.page.keyboard.press("0")  # 10
        a.page.wait_for_function(f"() => maskloop.annotations.some(x => x.id === {mask['id']} && x.rating.mine === 10)")
        summary = server.get_json(f"/api/annotations/{mask['id']}/rating")
        assert summary["count"] == 1 and summary["mean"] == 10  # one person's rating, replaced

        row.locator("select.rating").select_option("3")  # the menu does the same
        a.page.wait_for_function(f"() => maskloop.annotations.some(x => x.id === {mask['id']} && x.rating.mine === 3)")
        # The Model panel: the ratings of each version's masks and of each stage's (its next poll)
        badge = a.page.locator("#version-list li[data-version='base'] .rating-badge")
        badge.wait_for(timeout=15_000)
        assert badge.inner_text() == "★ 3 (1)" and "median 3" in badge.get_attribute("title")
        assert "manual" in a.page.locator("#stage-ratings").inner_text()
        a.page.mouse.move(5, 5)  # away from the panel: digits pick categories again
        a.page.locator("#stage").focus()
        a.page.keyboard.press("1")
        assert server.get_json(f"/api/annotations/{mask['id']}/rating")["mean"] == 3
        assert not a.errors, a.errors
    finally:
        context.close()
        server.stop()
