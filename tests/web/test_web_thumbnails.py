"""The image list shows each image's thumbnail (made and cached by the server), kept across repaints."""

from __future__ import annotations

from web_harness import VIEWPORT, Annotator, copy_images, start_server


def test_web_image_list_has_thumbnails(browser, web_cache, tmp_path):
    data = copy_images(tmp_path / "data", {"cat.jpg": "chelsea.jpg", "coffee.jpg": "coffee.jpg"})
    server = start_server(data, tmp_path / "work", web_cache)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        a = Annotator(context.new_page(), server)
        a.goto("cat.jpg")
        loaded = "() => [...document.querySelectorAll('#image-list img.thumb')].filter(i => i.complete && i.naturalWidth > 0).length === 2"
        a.page.wait_for_function(loaded)
        sizes = a.page.evaluate(
            "[...document.querySelectorAll('#image-list img.thumb')].map(i => [i.naturalWidth, i.naturalHeight])"
        )
        assert sorted(sizes) == [[128, 85], [128, 85]]  # 451x300 and 400x266 (coffee.jpg): long side 128
        a.page.evaluate("document.querySelector('#image-list img.thumb').dataset.seen = 'yes'")
        a.page.locator("#stage").focus()
        a.page.keyboard.press("n")  # the next image: the list is painted again
        a.page.wait_for_function("() => maskloop.image && maskloop.image.file_name === 'coffee.jpg'")
        a.idle()
        assert a.page.locator("#image-list img.thumb[data-seen=yes]").count() == 1  # the same element, not refetched
        assert not a.errors, a.errors
    finally:
        context.close()
        server.stop()
