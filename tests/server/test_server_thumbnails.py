"""``GET /api/images/<id>/thumbnail``: a small upright JPEG, made once per image content in the
work folder, revalidated by ETag; JSON errors for unknown and unusable images."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from support.data import image_ids


def test_a_photo_thumbnail_is_small_upright_cached_and_revalidated(photo_app):
    app = photo_app()
    client = app.test_client()
    images = {im["file_name"]: im for im in client.get("/api/images").get_json()}
    cat = images["chelsea.jpg"]
    r = client.get(f"/api/images/{cat['id']}/thumbnail")
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    assert r.headers["Cache-Control"] == "no-cache" and r.headers["ETag"]
    thumb = Image.open(io.BytesIO(r.data))
    assert max(thumb.size) == 128 and len(r.data) < 12_000
    assert abs(thumb.width / thumb.height - cat["width"] / cat["height"]) < 0.02
    cached = list((Path(app.config["WORKDIR"]) / "thumbnails").iterdir())
    assert [p.name for p in cached] == [f"{p.name.split('-')[0]}-128.jpg" for p in cached] and len(cached) == 1
    again = client.get(f"/api/images/{cat['id']}/thumbnail", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    mtime = cached[0].stat().st_mtime_ns
    assert client.get(f"/api/images/{cat['id']}/thumbnail").data == r.data  # made once, read back
    assert cached[0].stat().st_mtime_ns == mtime


def test_thumbnails_are_upright_and_errors_are_json(client):
    ids = image_ids(client)
    rotated = client.get(f"/api/images/{ids['rotated.jpg']}/thumbnail")
    assert rotated.status_code == 200
    assert Image.open(io.BytesIO(rotated.data)).size == (48, 64)  # EXIF applied, small images not enlarged
    missing = client.get("/api/images/99999/thumbnail")
    assert missing.status_code == 404 and "not found" in missing.get_json()["error"]
    broken = client.get(f"/api/images/{ids['truncated.jpg']}/thumbnail")
    assert broken.status_code == 422 and "cannot be used" in broken.get_json()["error"]
