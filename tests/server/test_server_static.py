"""The page's large files: cached for good under versioned URLs, gzip-compressed where that pays."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from maskloop.server.http import compress
from maskloop.server.http.app import create_app


@pytest.fixture
def web_dir(tmp_path):
    """A stand-in web/ folder with onnxruntime-web 9.8.7: a compressible 1 MiB wasm, a small module."""
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>maskloop</title>")
    package = web / "node_modules" / "onnxruntime-web"
    (package / "dist").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "onnxruntime-web", "version": "9.8.7"}))
    (package / "dist" / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm\1\0\0\0" + bytes(1 << 20))
    (package / "dist" / "ort.wasm.min.mjs").write_text("export default {};\n")
    return web


@pytest.fixture
def client(data_dir, tmp_path, onnx_dir, web_dir):
    config = {
        "TESTING": True,
        "DATA_DIR": str(data_dir),
        "WORKDIR": str(tmp_path / "work"),
        "ONNX_DIR": str(onnx_dir),
        "GZIP_DIR": str(tmp_path / "gzip"),  # not the user's shared cache
        "PRECOMPUTE": False,
        "WEB_DIR": str(web_dir),
    }
    return create_app(config).test_client()


def test_model_manifest_names_the_versioned_ort_url_which_is_cached_for_good(client):
    url = client.get("/api/model").get_json()["ort_url"]
    assert url == "/vendor/ort/v9.8.7/ort.wasm.min.mjs"
    r = client.get(url)
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert "immutable" in r.headers["Cache-Control"] and "max-age=31536000" in r.headers["Cache-Control"]
    unversioned = client.get("/vendor/ort/ort.wasm.min.mjs")
    assert "immutable" not in unversioned.headers.get("Cache-Control", "") and unversioned.headers["ETag"]
    r = client.get("/vendor/ort/v1.0.0/ort.wasm.min.mjs")
    assert r.status_code == 404 and "9.8.7" in r.get_json()["error"]
    assert client.get("/vendor/ort/v9.8.7/../../package.json").status_code == 404


def test_large_files_go_gzip_compressed_to_clients_that_accept_it(client, web_dir):
    raw = (web_dir / "node_modules" / "onnxruntime-web" / "dist" / "ort-wasm-simd-threaded.wasm").read_bytes()
    url = "/vendor/ort/v9.8.7/ort-wasm-simd-threaded.wasm"
    r = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip" and r.mimetype == "application/wasm"
    assert len(r.data) < len(raw) / 10 and gzip.decompress(r.data) == raw
    assert r.headers["Vary"] == "Accept-Encoding" and "immutable" in r.headers["Cache-Control"]
    again = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": r.headers["ETag"].strip('"')})
    assert again.status_code in (200, 304)
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers and plain.data == raw
    small = client.get("/vendor/ort/v9.8.7/ort.wasm.min.mjs", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers


def test_incompressible_files_are_sent_as_they_are_and_the_decision_is_kept(tmp_path):
    noise = tmp_path / "weights.onnx"
    noise.write_bytes(np.random.default_rng(0).bytes(1 << 19))
    assert compress.gzip_copy(noise, tmp_path / "gz") is None
    assert len(list((tmp_path / "gz").glob("*.raw"))) == 1 and not list((tmp_path / "gz").glob("*.gz"))
    text = tmp_path / "module.mjs"
    text.write_text("export const a = 1;\n" * 20000)
    copy = compress.gzip_copy(text, tmp_path / "gz")
    assert copy is not None and gzip.decompress(copy.read_bytes()) == text.read_bytes()
    text.write_text("export const b = 2;\n" * 20000)  # a new version of the file gets its own copy
    assert gzip.decompress(compress.gzip_copy(text, tmp_path / "gz").read_bytes()) == text.read_bytes()
