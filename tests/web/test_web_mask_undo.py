"""Undo and redo cover the stored masks of the open image (issue 27): Ctrl+Z after Enter removes
the saved mask from the store, Ctrl+Shift+Z saves it again with the same content; a deletion from
the masks panel is undone the same way."""

from __future__ import annotations

CAT_POINT = (250.0, 150.0)  # between the cat's eyes (chelsea.jpg, 451x300)
SAME = ("category_id", "segmentation", "area", "bbox", "clicks", "stage", "status", "prompts")


def stored(live, image_id: int) -> list[dict]:
    return live.get_json(f"/api/images/{image_id}/annotations")


def test_web_undo_and_redo_of_an_accept_and_a_deletion(annotator, live):
    a = annotator
    a.goto("cat_undo_accept.jpg")
    image = live.image_id("cat_undo_accept.jpg")
    a.click(*CAT_POINT)
    saved = a.accept()
    assert [m["id"] for m in stored(live, image)] == [saved["id"]]

    a.page.locator("#stage").focus()
    a.key("Control+z")  # no object in progress: the accept is undone
    assert stored(live, image) == [] and a.state("s.annotations.length") == 0
    assert (a.overlay("annotations") > 0).sum() == 0
    assert a.state("s.statusLine.last") == "removed"

    a.key("Control+Shift+z")  # saved again, with the same content
    (again,) = stored(live, image)
    assert all(again[k] == saved[k] for k in SAME), {k: (again[k], saved[k]) for k in SAME if again[k] != saved[k]}
    assert a.state("s.annotations.length") == 1 and (a.overlay("annotations") > 0).sum() > 20_000

    # A deletion from the masks panel is one undo step too; its button says what it does.
    delete = a.page.locator(f"#annotation-list li[data-annotation-id='{again['id']}'] button.delete")
    assert "Delete" in (delete.get_attribute("title") or "") + delete.inner_text()
    delete.click()
    a.page.wait_for_function("() => maskloop.annotations.length === 0")
    a.idle()
    assert stored(live, image) == []
    a.page.locator("#stage").focus()
    a.key("Control+z")
    (back,) = stored(live, image)
    assert all(back[k] == saved[k] for k in SAME)
    a.key("Control+z")  # and further back: before the accept
    assert stored(live, image) == []
    a.key("Control+Shift+z")
    a.key("Control+Shift+z")
    assert stored(live, image) == []  # redone: the accept, then the deletion

    # The toolbar's buttons do the same, and say their keys.
    assert "Ctrl+Z" in a.page.get_attribute("#undo-button", "title")
    assert "Ctrl+Shift+Z" in a.page.get_attribute("#redo-button", "title")
    a.page.click("#undo-button")
    a.idle()
    assert len(stored(live, image)) == 1
    a.page.click("#redo-button")
    a.idle()
    assert stored(live, image) == []

    # A category change from the masks panel is undone too (PATCHed back).
    a.page.click("#undo-button")
    a.idle()
    (mask,) = stored(live, image)
    a.create_category("undo other", "#2ecc71")
    other = next(c["id"] for c in live.get_json("/api/categories") if c["name"] == "undo other")
    a.page.select_option(f"#annotation-list li[data-annotation-id='{mask['id']}'] select", str(other))
    a.page.wait_for_function(f"() => maskloop.annotations[0].category_id === {other}")
    a.idle()
    assert stored(live, image)[0]["category_id"] == other
    a.page.locator("#stage").focus()
    a.key("Control+z")
    assert stored(live, image)[0]["category_id"] == mask["category_id"]
    a.key("Control+Shift+z")
    assert stored(live, image)[0]["category_id"] == other
    assert not a.errors, a.errors
