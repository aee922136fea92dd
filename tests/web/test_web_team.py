"""The team workflow in the page (accounts on): an annotator logs in, takes the next image, makes
masks by clicking, finishes the image; a reviewer logs in, takes it from the review list, rejects
one mask with a reason, corrects and accepts another, accepts the image, sends the next one back
(the annotator gets it again with the reason). The store's COCO export
(with the review filter) then says who made and who checked what. Accounts are made with the
real ``maskloop users add``; the server is a real ``maskloop serve`` (SQLite store).

``MASKLOOP_SCREENSHOT_DIR`` keeps the annotator's and the reviewer's page as PNGs there.
"""

from __future__ import annotations

import os
import re

import pytest
from support import cli
from web_harness import VIEWPORT, Annotator, copy_images, start_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CAT_POINT = (250.0, 150.0)  # between the cat's eyes (chelsea.jpg, 451x300)
WALL_POINT = (15.0, 60.0)  # the pale background at the top left, not the cat


def users_add(data, workdir, name: str, role: str) -> dict[str, str]:
    """``maskloop users add NAME --role ROLE``: its printed password and token."""
    done = cli.run("users", "add", name, "--role", role, "--data", str(data), "--workdir", str(workdir))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    return dict(re.findall(r"^(password|token): (\S+)$", out, re.M))


@pytest.fixture(scope="module")
def team(tmp_path_factory, web_cache):
    """A live server with accounts on: two copies of the cat photo, an annotator, a reviewer, an admin."""
    data = copy_images(tmp_path_factory.mktemp("team-data"), {"team_a.jpg": "chelsea.jpg", "team_b.jpg": "chelsea.jpg"})
    work = tmp_path_factory.mktemp("team-work")
    people = {name: users_add(data, work, name, role) for name, role in [("ana", "annotator"), ("rev", "reviewer")]}
    people["boss"] = users_add(data, work, "boss", "admin")
    server = start_server(data, work, web_cache, token=people["boss"]["token"])
    try:
        yield server, people
    finally:
        server.stop()


def admin_call(server, method: str, path: str, body: dict | None = None):
    import json
    import urllib.request

    request = urllib.request.Request(
        server.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={**server.headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read() or b"null")


def log_in(browser, server, name: str, password: str) -> Annotator:
    """A fresh browser context that logs in through /login and lands on the annotation page."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    driver = Annotator(page, server)
    page.goto(server.url + "/")
    page.wait_for_url("**/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#login button[type=submit]")
    page.wait_for_url(re.compile(r"/(#.*)?$"))
    page.wait_for_selector("#team-bar:not([hidden])")
    driver.wait_ready()
    return driver


def page_fetch(a: Annotator, method: str, path: str, body: dict | None = None) -> int:
    """The status of a request the page's session makes (with its CSRF token, as api.js does)."""
    return a.page.evaluate(
        """async ([method, path, body]) => {
             const csrf = decodeURIComponent(document.cookie.match(/maskloop_csrf=([^;]+)/)[1]);
             const r = await fetch(path, {method, headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                                          body: body === null ? undefined : JSON.stringify(body)});
             return r.status; }""",
        [method, path, body],
    )


def screenshot(a: Annotator, name: str, tmp_path) -> None:
    folder = os.environ.get("MASKLOOP_SCREENSHOT_DIR") or str(tmp_path)
    a.page.mouse.move(5, VIEWPORT["height"] - 5)  # off the mask rows: no mask is highlighted
    a.page.wait_for_timeout(200)
    a.page.screenshot(path=os.path.join(folder, name))


def test_team_annotate_then_review(team, browser, tmp_path):
    server, people = team
    admin_call(server, "POST", "/api/categories", {"name": "cat", "color": "#ff8800"})
    ids = {im["file_name"]: im["id"] for im in server.get_json("/api/images")}

    # -- the annotator: the page hands out team_a.jpg; two masks by clicking; finish -> team_b.jpg
    a = log_in(browser, server, "ana", people["ana"]["password"])
    assert a.page.locator("#account").inner_text() == "ana"
    assert a.page.locator("#role").inner_text() == "annotator"
    assert a.state("s.image.file_name") == "team_a.jpg" and a.state("s.team.held") == ids["team_a.jpg"]
    assert a.page.locator("#review-section").is_hidden()  # annotators do not review
    assert a.page.locator("#done-button").is_hidden() and a.page.locator("#finish-button").is_enabled()
    a.page.click("#help-button")
    assert "next image" in a.page.locator("#help-table").inner_text()
    a.page.keyboard.press("Escape")

    a.click(*CAT_POINT)
    cat_mask = a.accept()
    a.click(*WALL_POINT)
    wall_mask = a.accept()
    assert cat_mask["author"] == "ana" and cat_mask["model_version"] == "base"
    assert a.page.locator("#annotation-list .meta").first.inner_text().startswith("by ana · model base")
    screenshot(a, "team_annotator.png", tmp_path)

    a.page.click("#finish-button")
    a.idle()
    a.page.wait_for_function("() => maskloop.image.file_name === 'team_b.jpg' && maskloop.ready")
    assert a.state("s.team.held") == ids["team_b.jpg"]
    assert server.get_json(f"/api/images/{ids['team_a.jpg']}")["status"] == "done"
    a.page.keyboard.press("d")  # D finishes team_b.jpg too: nothing is left
    a.idle()
    a.page.wait_for_selector("#stage-message:has-text('No image left to annotate')")
    assert a.state("s.team.held") is None and a.page.locator("#work-status").inner_text() == "none left"
    # a review request of an annotator answers 403, whatever the page shows
    assert page_fetch(a, "POST", "/api/work/review/next") == 403
    assert page_fetch(a, "POST", f"/api/annotations/{cat_mask['id']}/review", {"decision": "accept"}) == 403
    a.page.click("#logout-button")
    a.page.wait_for_url("**/login")
    assert not a.errors, a.errors
    a.page.context.close()

    # -- the reviewer: both images wait; team_a.jpg: reject the wall, correct and accept the cat
    r = log_in(browser, server, "rev", people["rev"]["password"])
    assert r.page.locator("#role").inner_text() == "reviewer"
    waiting = r.page.locator("#review-list li[data-image-id]")
    assert waiting.count() == 2 and waiting.first.inner_text().startswith("team_a.jpg")
    waiting.first.click()
    r.page.wait_for_function(
        f"() => maskloop.team.reviewing && maskloop.team.held === {ids['team_a.jpg']} && maskloop.ready"
    )
    r.page.wait_for_selector("#annotation-list li[data-annotation-id] [data-action=review-accept]")
    assert r.page.locator("#review-form").is_visible()

    wall_row = r.page.locator(f"#annotation-list li[data-annotation-id='{wall_mask['id']}']")
    wall_row.locator("[data-action=review-reject]").click()
    wall_row.locator(".reject-form button[type=submit]").click()  # no reason: the field is required
    assert wall_row.locator(".reject-form").is_visible() and not wall_row.locator(".badge").count()
    wall_row.locator(".reject-form input").fill("that is the wall, not a cat")
    wall_row.locator(".reject-form button[type=submit]").click()
    r.idle()
    wall_row.locator(".badge.rejected").wait_for()
    assert "that is the wall" in wall_row.locator(".meta").inner_text()

    cat_row = r.page.locator(f"#annotation-list li[data-annotation-id='{cat_mask['id']}']")
    cat_row.locator("[data-action=edit]").click()  # "correct": the mask re-opens for more points
    r.idle()
    assert r.state("s.editing && s.editing.annotation.id") == cat_mask["id"]
    r.click(*CAT_POINT)
    r.page.locator("#stage").focus()
    r.page.keyboard.press("Enter")
    r.idle()
    r.page.wait_for_function("() => maskloop.editing === null")
    corrected = server.get_json(f"/api/annotations/{cat_mask['id']}")
    assert corrected["reviewer"] == "rev" and corrected["author"] == "ana" and corrected["review"] is None
    cat_row.locator("[data-action=review-accept]").click()
    r.idle()
    cat_row.locator(".badge.reviewed").wait_for()
    screenshot(r, "team_review.png", tmp_path)

    r.page.click("#review-accept")  # the image: accepted; team_b.jpg (no masks) opens next
    r.idle()
    r.page.wait_for_function(f"() => maskloop.team.held === {ids['team_b.jpg']} && maskloop.ready")
    assert r.page.locator("#review-list li[data-image-id]").count() == 1
    r.page.fill("#review-reason", "no masks at all")
    r.page.click("#review-reject")  # sent back: back in the annotation queue with the reason
    r.idle()
    r.page.wait_for_selector("#stage-message:has-text('No finished image is waiting for review')")
    assert not r.errors, r.errors
    r.page.context.close()

    # -- the annotator again: the image sent back is handed out first, with the reviewer's reason
    a = log_in(browser, server, "ana", people["ana"]["password"])
    assert a.state("s.image.file_name") == "team_b.jpg" and a.state("s.team.held") == ids["team_b.jpg"]
    assert a.page.locator("#stage-message").inner_text() == "sent back by the reviewer: no masks at all"
    a.page.click("#logout-button")  # gives it back
    a.page.wait_for_url("**/login")
    assert not a.errors, a.errors
    a.page.context.close()
    assert admin_call(server, "POST", "/api/work/next")["image"]["id"] == ids["team_b.jpg"]  # free again

    # -- what the store says
    reviewed = admin_call(server, "GET", "/api/export/coco?review=reviewed")["annotations"]
    rejected = admin_call(server, "GET", "/api/export/coco?review=rejected")["annotations"]
    assert [(x["id"], x["author"], x["reviewer"], x["review"]) for x in reviewed] == [
        (cat_mask["id"], "ana", "rev", "reviewed")
    ]
    assert [(x["id"], x["author"], x["reviewer"], x["review_reason"]) for x in rejected] == [
        (wall_mask["id"], "ana", "rev", "that is the wall, not a cat")
    ]
    images = {im["file_name"]: im for im in server.get_json("/api/images")}
    assert images["team_a.jpg"]["review"] == "reviewed" and images["team_a.jpg"]["status"] == "done"
    assert images["team_b.jpg"]["review"] == "rejected" and images["team_b.jpg"]["review_reason"] == "no masks at all"
    reviewers = {p["name"]: p for p in admin_call(server, "GET", "/api/stats")["reviewers"]}
    assert reviewers["rev"]["images_reviewed"] == 1 and reviewers["rev"]["images_rejected"] == 1


def test_single_user_page_shows_no_team_ui(annotator):
    """Without accounts the page is as it was: no account bar, no review, D marks done, no W."""
    a = annotator
    a.goto("cat_accept.jpg")
    assert a.state("s.team") is None
    for hidden in ("#team-bar", "#review-section"):
        assert a.page.locator(hidden).is_hidden()
    assert a.page.locator("#done-button").is_visible() and a.page.locator("#category-form").is_visible()
    help_text = a.page.locator("#help-table").inner_text()
    assert "mark the image done" in help_text and "next image: the server" not in help_text
