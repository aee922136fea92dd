"""Who may call the API, cross-origin isolation headers, MIME types of the page's assets."""

from __future__ import annotations

import pytest

from maskloop.server.http.app import create_app
from maskloop.server.http.security import COOKIE, is_loopback


@pytest.fixture
def web_dir(tmp_path):
    """A stand-in web/ folder: a page, a module script, a worker and a (fake) wasm file."""
    web = tmp_path / "web"
    (web / "js").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>maskloop</title>")
    (web / "js" / "app.mjs").write_text("export const x = 1;\n")
    (web / "js" / "worker.js").write_text("self.onmessage = () => {};\n")
    ort = web / "node_modules" / "onnxruntime-web" / "dist"
    ort.mkdir(parents=True)
    (ort / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm\1\0\0\0")
    (ort / "ort.wasm.min.mjs").write_text("export default {};\n")
    (web / "node_modules" / "secret.txt").write_text("no")
    return web


def make_app(data_dir, tmp_path, onnx_dir, **config):
    base = {
        "TESTING": True,
        "DATA_DIR": str(data_dir),
        "WORKDIR": str(tmp_path / "work"),
        "ONNX_DIR": str(onnx_dir),
        "PRECOMPUTE": False,
    }
    return create_app({**base, **config})


def test_loopback_names():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("[::1]")
    assert is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.com")


def test_non_loopback_host_requires_a_token(data_dir, tmp_path, onnx_dir):
    app = make_app(data_dir, tmp_path, onnx_dir, HOST="0.0.0.0")
    token = app.config["TOKEN"]
    assert token and len(token) >= 24
    client = app.test_client()
    for url in (
        "/api/images",
        "/api/progress",
        "/api/categories",
        "/api/export/coco",
        "/api/images/1/file",
        "/models/decoder.onnx",
    ):
        r = client.get(url, headers={"Host": "192.168.1.5:8000"})
        assert r.status_code == 401, url
        assert "token" in r.get_json()["error"]
    assert client.get("/api/images", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert (
        client.get("/api/images", headers={"Authorization": f"Bearer {token}", "Host": "10.0.0.2"}).status_code == 200
    )
    assert client.get(f"/api/images?token={token}").status_code == 200
    assert (
        client.post("/api/categories", json={"name": "x"}, headers={"Authorization": f"Bearer {token}"}).status_code
        == 201
    )


def test_opening_the_page_with_the_token_sets_a_cookie(data_dir, tmp_path, onnx_dir, web_dir):
    app = make_app(data_dir, tmp_path, onnx_dir, HOST="0.0.0.0", TOKEN="s3cret-token", WEB_DIR=str(web_dir))
    client = app.test_client()
    assert client.get("/").status_code == 200  # the page itself holds no data
    assert client.get("/api/images").status_code == 401
    r = client.get("/?token=s3cret-token")
    assert r.status_code == 200 and COOKIE in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    assert client.get("/api/images").status_code == 200  # the cookie now travels with same-origin requests


def test_loopback_refuses_foreign_host_headers(client):
    assert client.get("/api/images").status_code == 200  # Host: localhost
    assert client.get("/api/images", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert client.get("/api/images", headers={"Host": "[::1]:8000"}).status_code == 200
    r = client.get("/api/images", headers={"Host": "evil.example.com"})
    assert r.status_code == 403 and "loopback" in r.get_json()["error"]


def test_accounts_on_keep_the_host_check(data_dir, tmp_path, onnx_dir):
    """Issue 25: with accounts on, a DNS-rebinding page (its own domain in Host) is refused before
    any login; loopback names, IP addresses and MASKLOOP_ALLOWED_HOSTS pass."""
    client = make_app(data_dir, tmp_path, onnx_dir, ACCOUNTS=True, ALLOWED_HOSTS="annotate.example.org").test_client()
    login = {"name": "bob", "password": "guess"}
    refused = client.post("/api/login", json=login, headers={"Host": "rebind.evil.example"})
    assert refused.status_code == 403 and "MASKLOOP_ALLOWED_HOSTS" in refused.get_json()["error"]
    assert client.get("/api/me", headers={"Host": "rebind.evil.example:8000"}).status_code == 403
    hosts = (
        "localhost",
        "127.0.0.1:8000",
        "[::1]:8000",
        "10.0.0.5:8000",
        "annotate.example.org",
        "ANNOTATE.example.org:443",
    )
    for i, host in enumerate(hosts):  # a name each: the login limit is not what is tested here
        r = client.post("/api/login", json={**login, "name": f"bob{i}"}, headers={"Host": host})
        assert r.status_code == 401, (host, r.get_json())
    assert client.get("/api/me", headers={"Host": "10.0.0.5"}).status_code == 401  # past the Host check: log in first


def test_every_response_is_cross_origin_isolated(data_dir, tmp_path, onnx_dir, web_dir):
    client = make_app(data_dir, tmp_path, onnx_dir, WEB_DIR=str(web_dir)).test_client()
    for url in (
        "/",
        "/web/js/app.mjs",
        "/vendor/ort/ort-wasm-simd-threaded.wasm",
        "/api/images",
        "/api/nothing",
        "/api/images/1/file",
        "/no/such/page",
    ):
        r = client.get(url)
        assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin", url
        assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp", url
        assert r.headers["Cross-Origin-Resource-Policy"] == "same-origin", url


def test_every_html_answer_has_a_strict_policy_and_cannot_be_framed(data_dir, tmp_path, onnx_dir, web_dir):
    """Issue 25: the page, the login page, /stats and the login redirect (accounts on) carry the
    content security policy and X-Frame-Options; nothing in the policy allows inline script."""
    (web_dir / "login.html").write_text("<!doctype html><title>log in</title>")
    client = make_app(data_dir, tmp_path, onnx_dir, WEB_DIR=str(web_dir)).test_client()
    answers = [client.get(url) for url in ("/", "/login", "/stats")]
    team = make_app(data_dir, tmp_path, onnx_dir, WEB_DIR=str(web_dir), ACCOUNTS=True).test_client()
    answers.append(team.get("/"))  # 401: the short HTML page that sends the browser to /login
    for r in answers:
        assert r.mimetype == "text/html", (r.request.path, r.status_code)
        policy = r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
        assert directives["base-uri"] == "'none'" and directives["frame-ancestors"] == "'none'"
        assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"
        assert "unsafe-inline" not in policy
    assert b"<style" not in answers[2].data and b"<script>" not in answers[2].data  # /stats: its CSS is a file
    assert "Content-Security-Policy" not in client.get("/api/images").headers  # JSON needs none


def test_mime_types_and_web_folder_limits(data_dir, tmp_path, onnx_dir, web_dir):
    client = make_app(data_dir, tmp_path, onnx_dir, WEB_DIR=str(web_dir)).test_client()
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert client.get("/web/js/app.mjs").mimetype == "text/javascript"
    assert client.get("/web/js/worker.js").mimetype == "text/javascript"
    r = client.get("/vendor/ort/ort-wasm-simd-threaded.wasm")
    assert r.status_code == 200 and r.mimetype == "application/wasm" and r.data.startswith(b"\0asm")
    assert client.get("/vendor/ort/ort.wasm.min.mjs").mimetype == "text/javascript"
    assert client.get("/web/node_modules/secret.txt").status_code == 404
    assert client.get("/vendor/ort/../../secret.txt").status_code == 404
    assert client.get("/web/missing.js").status_code == 404


def test_real_onnxruntime_web_files_if_installed(client):
    from maskloop.paths import WEB_DIR

    dist = WEB_DIR / "node_modules" / "onnxruntime-web" / "dist"
    wasm = sorted(dist.glob("*.wasm"))
    if not wasm:
        pytest.skip("web/node_modules is not installed (npm ci in web/)")
    r = client.get(f"/vendor/ort/{wasm[0].name}")
    assert r.status_code == 200 and r.mimetype == "application/wasm"
    assert client.get("/vendor/ort/ort.min.mjs").mimetype == "text/javascript"


def test_missing_page_is_a_json_404(data_dir, tmp_path, onnx_dir):
    client = make_app(data_dir, tmp_path, onnx_dir, WEB_DIR=str(tmp_path / "no-web")).test_client()
    r = client.get("/")
    assert r.status_code == 404 and "index.html" in r.get_json()["error"]
