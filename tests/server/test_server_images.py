"""The image catalogue over HTTP: listing, bad files, statuses, files with EXIF, rescans."""

from __future__ import annotations

import io

from PIL import Image
from support.data import BAD_FILES, GOOD_FILES, image_ids, write_jpeg


def test_listing_has_good_and_bad_files_with_clear_status(client):
    images = {img["file_name"]: img for img in client.get("/api/images").get_json()}
    assert set(images) == set(GOOD_FILES) | set(BAD_FILES)  # README.txt and the non-UTF-8 name are skipped
    for name in GOOD_FILES:
        assert images[name]["status"] == "not_started" and "error" not in images[name]
    for name in BAD_FILES:
        assert images[name]["status"] == "error", name
        assert images[name]["error"] and "\n" not in images[name]["error"]
    assert "empty" in images["empty.png"]["error"]
    assert "too large" in images["bomb.png"]["error"]
    assert "not an image" in images["notes.jpg"]["error"]
    assert "unreadable" in images["truncated.jpg"]["error"]
    assert [img["id"] for img in images.values()] and min(img["id"] for img in images.values()) == 1
    # width/height as shown: the EXIF-rotated 64x48 JPEG is 48 wide, 64 high
    assert (images["rotated.jpg"]["width"], images["rotated.jpg"]["height"]) == (48, 64)
    assert (images["b.png"]["width"], images["b.png"]["height"]) == (30, 40)
    assert set(images["a.jpg"]) >= {"id", "file_name", "width", "height", "num_annotations", "status"}


def test_bad_files_answer_4xx_not_crash(client):
    ids = image_ids(client)
    for name in BAD_FILES:
        for suffix in ("/file", "/embedding"):
            r = client.get(f"/api/images/{ids[name]}{suffix}")
            assert r.status_code == 422, (name, suffix)
            assert name in r.get_json()["error"]


def test_file_is_served_upright(client):
    ids = image_ids(client)
    r = client.get(f"/api/images/{ids['a.jpg']}/file")
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    assert r.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    r = client.get(f"/api/images/{ids['rotated.jpg']}/file")
    assert r.status_code == 200
    img = Image.open(io.BytesIO(r.data))
    assert img.size == (48, 64)  # width, height after the EXIF rotation
    assert img.getexif().get(0x0112, 1) == 1
    r = client.get(f"/api/images/{ids['sub/café photo ünï.jpg']}/file")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.data)).size == (32, 32)


def test_formats_browsers_cannot_show_are_converted(client, data_dir):
    Image.new("RGB", (20, 10), (200, 30, 40)).save(data_dir / "scan.tif")
    client.post("/api/images/rescan")
    r = client.get(f"/api/images/{image_ids(client)['scan.tif']}/file")
    assert r.status_code == 200 and r.mimetype == "image/png"
    img = Image.open(io.BytesIO(r.data))
    assert img.size == (20, 10) and img.getpixel((5, 5)) == (200, 30, 40)


def test_file_conditional_get(client):
    ids = image_ids(client)
    r = client.get(f"/api/images/{ids['a.jpg']}/file")
    r2 = client.get(f"/api/images/{ids['a.jpg']}/file", headers={"If-None-Match": r.headers["ETag"]})
    assert r2.status_code == 304


def test_unknown_image_and_traversal(client):
    assert client.get("/api/images/999").status_code == 404
    assert client.get("/api/images/999/file").get_json()["error"] == "image 999 not found"
    for url in (
        "/api/images/..%2f..%2fetc%2fpasswd/file",
        "/api/images/../../etc/passwd",
        "/api/images/-1/file",
        "/web/..%2f..%2fpyproject.toml",
        "/web/../pyproject.toml",
        "/vendor/ort/..%2f..%2f..%2fpackage.json",
        "/web/node_modules/onnxruntime-web/package.json",
        "/models/..%2fmaskloop.db",
    ):
        r = client.get(url)
        assert r.status_code in (404, 405), url
        assert b"root:" not in r.data and b"[project]" not in r.data


def test_mark_done_and_status_validation(client):
    ids = image_ids(client)
    r = client.patch(f"/api/images/{ids['a.jpg']}", json={"status": "done"})
    assert r.status_code == 200 and r.get_json()["status"] == "done"
    assert client.patch(f"/api/images/{ids['a.jpg']}", json={"status": "finished"}).status_code == 400
    assert client.patch(f"/api/images/{ids['a.jpg']}", json={"status": "done", "x": 1}).status_code == 400
    r = client.patch(f"/api/images/{ids['a.jpg']}", json={"status": "not_started"})
    assert r.get_json()["status"] == "not_started"


def test_new_files_are_picked_up(app, client, data_dir):
    before = image_ids(client)
    write_jpeg(data_dir / "zz_new.jpg", seed=9)
    r = client.post("/api/images/rescan")
    assert r.status_code == 200 and r.get_json()["added"] == 1
    after = image_ids(client)
    assert after["zz_new.jpg"] > max(before.values())
    (data_dir / "zz_new.jpg").unlink()
    client.post("/api/images/rescan")
    assert "zz_new.jpg" not in image_ids(client)
    # a listing rescans by itself once the interval has passed
    app.extensions["maskloop"].catalog.interval = 0
    write_jpeg(data_dir / "zz_other.jpg", seed=10)
    assert "zz_other.jpg" in image_ids(client)


def test_progress_counts_usable_images(client):
    progress = client.get("/api/progress").get_json()
    assert progress == {"done": 0, "total": len(GOOD_FILES), "running": False}


def test_a_restart_keeps_ids(app, data_dir, tmp_path, onnx_dir):
    from maskloop.server.http.app import create_app

    first = image_ids(app.test_client())
    again = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data_dir),
            "WORKDIR": str(tmp_path / "work"),
            "ONNX_DIR": str(onnx_dir),
            "PRECOMPUTE": False,
        }
    )
    assert image_ids(again.test_client()) == first


def test_images_are_never_modified(client, data_dir):
    before = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    ids = image_ids(client)
    for i in ids.values():
        client.get(f"/api/images/{i}/file")
    after = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    assert after == before
