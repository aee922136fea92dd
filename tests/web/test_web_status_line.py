"""The top bar's status line speaks a person's language ("Ready", "Mask in 45 ms", "Saved"), keeps
the engineering figures in a diagnostics popover, and forgets the previous image's values when
another image opens (issue 27)."""

from __future__ import annotations

import re

CAT_POINT = (250.0, 150.0)  # between the cat's eyes (chelsea.jpg, 451x300)


def line(a) -> str:
    return a.page.locator("#st-line").inner_text().strip()


def test_web_status_line_for_people_and_reset_on_image_change(annotator, live):
    a = annotator
    a.goto("cat_status.jpg")
    assert line(a) == "Ready" and a.state("s.statusLine.level") != "bad"
    # The engineering figures are in the popover, closed until the "i" is clicked.
    assert not a.page.locator("#st-decoder").is_visible()
    a.page.click("#diagnostics > summary")
    assert "ready" in a.page.locator("#st-decoder").inner_text()
    assert "thread" in a.page.locator("#st-isolation").inner_text()
    a.page.click("#diagnostics > summary")
    assert not a.page.locator("#st-decoder").is_visible()

    a.click(*CAT_POINT)
    assert re.fullmatch(r"Mask in \d+ ms(: slower than usual)?", line(a)), line(a)
    assert a.state("s.statusLine.maskMs") > 0
    assert "prompt → mask" in a.page.locator("#st-latency").text_content()
    a.create_category("cat")
    a.accept()
    assert line(a) == "Saved"
    assert a.page.locator("#st-saving").text_content().startswith("saved #")

    coffee = live.image_id("coffee.jpg")
    a.page.evaluate(f"location.hash = '#image={coffee}'")
    a.page.wait_for_function(f"() => maskloop.image && maskloop.image.id === {coffee}")
    a.wait_ready()
    a.idle()
    assert line(a) == "Ready", line(a)
    assert a.state("s.statusLine.maskMs") is None and a.state("s.statusLine.last") is None
    assert a.page.locator("#st-saving").text_content().strip() == ""
    assert a.page.locator("#st-latency").text_content().strip() == "prompt → mask –"
    assert not a.errors, a.errors
