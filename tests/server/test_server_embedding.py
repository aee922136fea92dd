"""Embeddings with the real default model on the CPU: endpoint, caching, the worker, the decoder files."""

from __future__ import annotations

import io
import logging
import os
import time

import numpy as np
import pytest
from support.data import image_ids

pytestmark = pytest.mark.slow
NPY_FP16_BYTES = 2_097_280  # 1*256*64*64*2 + the 128-byte .npy header
CACHE_TRAILER_BYTES = 12  # the cache entry's checksum after the .npy bytes


def load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def test_embedding_endpoint(photo_app, photo_dir):
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb

    app = photo_app()
    client = app.test_client()
    cat = image_ids(client)["chelsea.jpg"]
    r = client.get(f"/api/images/{cat}/embedding")
    assert r.status_code == 200, r.get_json()
    assert len(r.data) == NPY_FP16_BYTES
    embedding = load_npy(r.data)
    assert embedding.shape == (1, 256, 64, 64) and embedding.dtype == np.float16
    etag = r.headers["ETag"]
    assert not etag.startswith("W/") and r.headers["Cache-Control"] == "public, max-age=31536000, immutable"

    embedder = ImageEmbedder(app.extensions["maskloop"].model.embedder().model)
    expected = embedder.embed([load_image_rgb(photo_dir / "chelsea.jpg")])
    assert np.abs(embedding.astype(np.float32) - expected).max() < 1e-2 * max(1.0, np.abs(expected).max())

    r304 = client.get(f"/api/images/{cat}/embedding", headers={"If-None-Match": etag})
    assert r304.status_code == 304 and r304.data == b"" and r304.headers["ETag"] == etag
    r32 = client.get(f"/api/images/{cat}/embedding?dtype=float32")
    as32 = load_npy(r32.data)
    assert as32.dtype == np.float32 and as32.shape == (1, 256, 64, 64)
    assert np.array_equal(as32, embedding.astype(np.float32)) and r32.headers["ETag"] != etag
    assert client.get(f"/api/images/{cat}/embedding?dtype=int8").status_code == 400
    assert client.get(f"/api/images/{cat}").get_json()["embedding_ready"] is True

    # a corrupt cache file is computed again, not served
    path = app.extensions["maskloop"].embeddings.cache.path(_sha(app, cat))
    path.write_bytes(r.data[: len(r.data) // 2])
    again = client.get(f"/api/images/{cat}/embedding")
    assert again.status_code == 200 and len(again.data) == NPY_FP16_BYTES
    assert np.allclose(load_npy(again.data).astype(np.float32), embedding.astype(np.float32), atol=1e-2)
    assert path.stat().st_size == NPY_FP16_BYTES + CACHE_TRAILER_BYTES


def _flip_bytes_in_place(path, offset: int, count: int) -> None:
    """Invert ``count`` bytes at ``offset``, keeping the file's size and mtime (as bit rot would)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[offset : offset + count] = bytes(b ^ 0xFF for b in data[offset : offset + count])
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_cache_entry_with_flipped_bytes_is_recomputed_and_repaired(photo_app, caplog):
    """Right size, a few bytes flipped inside the array: the page's route and the trainer's
    ``EmbeddingService.get`` both get the true embedding, and the file is rewritten."""
    app = photo_app()
    client = app.test_client()
    ids = image_ids(client)
    embeddings = app.extensions["maskloop"].embeddings
    for name in ("chelsea.jpg", "astronaut.jpg"):
        image_id = ids[name]
        good = client.get(f"/api/images/{image_id}/embedding").data
        path = embeddings.cache.path(_sha(app, image_id))
        sound_file = path.read_bytes()
        assert len(sound_file) == NPY_FP16_BYTES + CACHE_TRAILER_BYTES and sound_file.startswith(good)
        # small flipped values that a finite-float16 check alone would accept
        _flip_bytes_in_place(path, 128 + 2 * 1000, 1)
        assert path.stat().st_size == len(sound_file) and embeddings.cache._sound(path.read_bytes())

        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="maskloop.server.jobs.embedding_cache"):
            if name == "chelsea.jpg":  # the page's route
                r = client.get(f"/api/images/{image_id}/embedding")
                assert r.status_code == 200
                served = r.data
            else:  # what the trainer calls
                served = embeddings.get(_sha(app, image_id), app.config["DATA_DIR"] + "/" + name, image_id)
        assert [rec.getMessage() for rec in caplog.records if "fails its checksum" in rec.getMessage()] == [
            f"embedding cache file {path} fails its checksum; computing it again"
        ]
        assert np.array_equal(load_npy(served), load_npy(good))
        assert path.read_bytes() == sound_file  # repaired: the same embedding and checksum again


def test_a_cache_entry_from_before_checksums_is_accepted_and_given_one(photo_app):
    app = photo_app()
    client = app.test_client()
    image_id = image_ids(client)["chelsea.jpg"]
    good = client.get(f"/api/images/{image_id}/embedding").data
    path = app.extensions["maskloop"].embeddings.cache.path(_sha(app, image_id))
    path.write_bytes(good)  # the old format: the .npy bytes alone
    started = time.perf_counter()
    again = client.get(f"/api/images/{image_id}/embedding")
    assert again.data == good and time.perf_counter() - started < 1.0  # from disk, no model run
    assert path.stat().st_size == NPY_FP16_BYTES + CACHE_TRAILER_BYTES and path.read_bytes().startswith(good)


def _sha(app, image_id: int) -> str:
    from maskloop.server.store.db import open_database

    conn = open_database(app.config["DATABASE"])
    try:
        return conn.execute("SELECT sha256 FROM image WHERE id=?", (image_id,)).fetchone()[0]
    finally:
        conn.close()


def test_worker_precomputes_and_a_restart_resumes(photo_app):
    app = photo_app(PRECOMPUTE=True)
    client = app.test_client()
    deadline = time.monotonic() + 120
    progress = client.get("/api/progress").get_json()
    assert progress["total"] == 2
    while progress["done"] < progress["total"] and time.monotonic() < deadline:
        time.sleep(0.2)
        progress = client.get("/api/progress").get_json()
    assert progress == {"done": 2, "total": 2, "running": False}
    assert all(img["embedding_ready"] for img in client.get("/api/images").get_json())
    app.extensions["maskloop"].embeddings.stop()

    again = photo_app(PRECOMPUTE=True)
    assert again.test_client().get("/api/progress").get_json() == {"done": 2, "total": 2, "running": False}
    started = time.perf_counter()
    r = again.test_client().get(f"/api/images/{image_ids(client)['astronaut.jpg']}/embedding")
    assert r.status_code == 200 and time.perf_counter() - started < 1.0  # from disk, no model run


def test_model_manifest_and_decoder_files(photo_app):
    client = photo_app().test_client()
    r = client.get("/api/model")
    assert r.status_code == 200, r.get_json()
    manifest = r.get_json()
    assert manifest["model_type"] == "vit_t" and manifest["input_size"] == 1024
    assert manifest["embedding"]["shape"] == [1, 256, 64, 64] and manifest["embedding_transfer_dtype"] == "float16"
    assert "mask_threshold" in manifest and manifest["model_id"].startswith("vit_t-")
    assert manifest["model_version"] == "base"
    fp32_sha = manifest["decoders"]["fp32"]["sha256"][:16]  # a file exported again gets a new URL
    assert manifest["decoders"]["fp32"]["url"] == f"/models/base/decoder.onnx?sha256={fp32_sha}"
    assert manifest["decoder_url"] == manifest["decoders"]["fp32"]["url"]
    for name, color in zip(("first", "second"), manifest["category_palette"]):  # what the page offers is what is stored
        assert client.post("/api/categories", json={"name": name}).get_json()["color"] == color
    for entry in manifest["decoders"].values():
        f = client.get(entry["url"])
        assert f.status_code == 200 and f.mimetype == "application/octet-stream" and len(f.data) == entry["bytes"]
        assert f.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    for part in ("prefix", "prompt"):  # the decoder split in two for the page (exporter/decoder_prefix.py)
        entry = manifest["prefix"][part]
        assert entry["url"] == f"/models/base/decoder_{part}.onnx?sha256={entry['sha256'][:16]}"
        f = client.get(entry["url"])
        assert f.status_code == 200 and len(f.data) == entry["bytes"] and "immutable" in f.headers["Cache-Control"]
    assert client.get("/models/manifest.json").get_json()["model_type"] == "vit_t"  # the active version's
    assert client.get("/models/base/manifest.json").get_json()["model_type"] == "vit_t"
    assert client.get("/models/maskloop.db").status_code == 404
    assert client.get("/models/base/maskloop.db").status_code == 404
    assert client.get("/models/..%2f..%2fmaskloop.db/manifest.json").status_code == 404
