"""The content security policy in Chromium: the annotation page (its modules, the decoder worker
and onnxruntime-web's WebAssembly), a click's mask and the login page work under it with no
violation reported, and a page on another site cannot frame maskloop (``frame-ancestors 'none'``,
``X-Frame-Options: DENY``)."""

from __future__ import annotations

import urllib.request

import pytest
from web_harness import VIEWPORT, Annotator

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CAT_POINT = (250.0, 150.0)  # between the cat's eyes (chelsea.jpg, 451x300)
#: Collects the document's CSP violation events (workers report theirs on the console).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def _watched(browser):
    """A context whose pages record CSP violations (events and console messages) in ``problems``."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(RECORD_VIOLATIONS)
    problems: list[str] = []
    page = context.new_page()
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if "Content Security Policy" in m.text or "Content-Security-Policy" in m.text
            else None
        ),
    )
    return context, page, problems


def _violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations || []")


def test_every_html_answer_has_the_policy(live):
    for path in ("/", "/login", "/stats"):
        with urllib.request.urlopen(live.url + path, timeout=60) as r:
            policy = r.headers["Content-Security-Policy"]
            assert r.headers["X-Frame-Options"] == "DENY", path
        for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
            assert directive in policy, (path, policy)
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy.replace("'wasm-unsafe-eval'", "")


def test_page_worker_and_click_work_under_the_policy(browser, live):
    context, page, problems = _watched(browser)
    try:
        a = Annotator(page, live)
        a.goto("cat_box.jpg")  # clicked, never accepted: the other tests' masks are untouched
        assert a.state("s.decoderInfo") is not None  # the worker's decoder loaded (WASM compiled)
        assert a.state("s.decoderInfo.crossOriginIsolated") is True
        a.click(*CAT_POINT)
        assert (a.overlay() > 0).sum() > 20_000, "no mask drawn after the click"
        assert not a.state("s.latencies.at(-1).server"), "the click was decoded by the server, not the worker"
        page.keyboard.press("Escape")
        page.goto(live.url + "/stats")
        assert page.locator("h1").inner_text().startswith("Data engine")
        assert page.evaluate("getComputedStyle(document.body).marginTop") != "0px"  # its stylesheet applies
        assert not a.errors, a.errors
        assert not _violations(page) and not problems, (_violations(page), problems)
    finally:
        context.close()


def test_login_page_works_under_the_policy(browser, live):
    context, page, problems = _watched(browser)
    try:
        page.goto(live.url + "/login")
        page.fill("#name", "someone")
        page.fill("#password", "secret")
        page.click("#login button[type=submit]")
        # single-user mode: the server says so, and login.js (its script and fetch) shows it
        page.wait_for_function("() => document.getElementById('login-error').textContent.includes('single-user')")
        assert page.evaluate("getComputedStyle(document.getElementById('login')).display") != ""
        assert not _violations(page) and not problems, (_violations(page), problems)
    finally:
        context.close()


def test_another_site_cannot_frame_the_page(browser, live):
    context = browser.new_context(viewport=VIEWPORT)
    framer = f'<!doctype html><title>framer</title><iframe id="f" src="{live.url}/" width="800" height="600"></iframe>'
    # The framing page is answered by the browser itself at an address of the server (a page of
    # another site at a public address could not frame a loopback server anyway: Chromium's
    # private network rules), so only the policy stands between it and the page.
    context.route(f"{live.url}/framer.html", lambda route: route.fulfill(body=framer, content_type="text/html"))
    refused: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: refused.append(m.text) if "frame" in m.text.lower() else None)
    try:
        page.goto(f"{live.url}/framer.html")
        page.wait_for_timeout(3000)
        frame = page.frames[1] if len(page.frames) > 1 else None
        shown = frame is not None and frame.url.startswith(live.url)
        if shown:
            try:
                shown = frame.locator("#topbar").count() > 0
            except Exception:  # the frame's document is not the page
                shown = False
        assert not shown, "maskloop's page was shown inside another page's frame"
        assert any("frame-ancestors 'none'" in m for m in refused), refused
    finally:
        context.close()
