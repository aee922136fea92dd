"""The first Enter on a project without categories asks for the category's name ("Name this kind
of object", ``object`` pre-filled): Esc cancels the accept, Enter saves under the name given, and
it is never asked again (issue 27)."""

from __future__ import annotations

from web_harness import VIEWPORT, Annotator, copy_images, start_server

CAT_POINT = (250.0, 150.0)  # between the cat's eyes (chelsea.jpg, 451x300)


def test_web_first_enter_asks_for_the_category_name(browser, web_cache, tmp_path):
    data = copy_images(tmp_path / "data", {"cat.jpg": "chelsea.jpg"})
    server = start_server(data, tmp_path / "work", web_cache)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        a = Annotator(context.new_page(), server)
        a.goto("cat.jpg")
        image = server.image_id("cat.jpg")
        a.click(*CAT_POINT)
        a.page.locator("#stage").focus()

        a.page.keyboard.press("Enter")
        a.page.wait_for_function("() => maskloop.askingCategory")
        card = a.page.locator("#first-category")
        assert card.is_visible() and "Name this kind of object" in card.inner_text()
        assert a.page.input_value("#first-category-name") == "object"
        a.page.keyboard.press("Escape")  # cancels the accept: nothing is saved, the mask stays
        a.page.wait_for_function("() => !maskloop.askingCategory")
        a.idle()
        assert not card.is_visible() and a.state("s.maskShown")
        assert server.get_json("/api/categories") == []
        assert server.get_json(f"/api/images/{image}/annotations") == []

        a.page.keyboard.press("Enter")
        a.page.wait_for_function("() => maskloop.askingCategory")
        a.page.fill("#first-category-name", "cat")
        a.page.keyboard.press("Enter")
        a.page.wait_for_function("() => maskloop.annotations.length === 1")
        a.idle()
        categories = server.get_json("/api/categories")
        assert [c["name"] for c in categories] == ["cat"]
        assert a.state("s.annotations[0].category_id") == categories[0]["id"] == a.state("s.categoryId")

        a.click(300.0, 200.0)  # the next Enter saves at once: asked once only
        a.page.locator("#stage").focus()
        a.page.keyboard.press("Enter")
        a.page.wait_for_function("() => maskloop.annotations.length === 2")
        assert not a.state("s.askingCategory")
        assert len(server.get_json("/api/categories")) == 1
        assert a.page.locator("#errors").inner_text().strip() == ""
        assert not a.errors, a.errors
    finally:
        context.close()
        server.stop()
