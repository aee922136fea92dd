"""A large image's first view goes first: the page's coarse cut never queues behind embeddings
or other images' thumbnails (decode slots), a kept thumbnail is served without cutting again,
and whole-image embeddings wait while a view is being cut (server/jobs/views_first.py)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from support.large_images import write_large_jpeg

from maskloop.server.jobs.views_first import ViewsFirst


@pytest.fixture
def large_app(photo_app, tmp_path):
    """An app on a folder of one 5,000 x 3,000 JPEG (a pyramid, embedded from its overview)."""
    data = tmp_path / "large"
    data.mkdir()
    write_large_jpeg(data / "field.jpg", 5000, 3000)
    return photo_app(DATA_DIR=str(data))


def _field(client) -> dict:
    return next(im for im in client.get("/api/images").get_json() if im["file_name"] == "field.jpg")


def _sha(app, image_id: int) -> str:
    from maskloop.server.http.db import get_db
    from maskloop.server.store import images as image_store

    with app.app_context():
        return str(image_store.get_image(get_db(), image_id)["sha256"])


def _in_thread(call) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def test_the_view_is_cut_while_every_decode_slot_is_held(large_app):
    client = large_app.test_client()
    image_id = _field(client)["id"]
    slots = large_app.extensions["maskloop"].embeddings.decode_slots
    held = 0
    while slots.acquire(blocking=False):  # as two encodes (or two other images' thumbnails) would
        held += 1
    try:
        thread, out = _in_thread(lambda: client.get(f"/api/images/{image_id}/pyramid"))
        thread.join(60)
        assert not thread.is_alive(), "the manifest waited for a decode slot"
        assert out[0].status_code == 200 and out[0].get_json()["levels"] == 14
    finally:
        for _ in range(held):
            slots.release()


def test_a_kept_thumbnail_is_served_without_cutting_the_pyramid_again(large_app):
    client = large_app.test_client()
    field = _field(client)
    assert client.get(f"/api/images/{field['id']}/thumbnail").status_code == 200
    coarse = Path(large_app.config["WORKDIR"]) / "pyramids" / _sha(large_app, field["id"]) / "coarse"
    assert coarse.is_dir()  # made from the coarse levels' overview
    shutil.rmtree(coarse)
    r = client.get(f"/api/images/{field['id']}/thumbnail")
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    assert not coarse.exists()  # the kept thumbnail answered: nothing was decoded for it


def test_a_whole_image_embedding_waits_while_a_view_is_cut(large_app):
    client = large_app.test_client()
    image_id = _field(client)["id"]
    views = large_app.extensions["maskloop"].embeddings.views
    with views.view():  # a page's view of another image being cut
        thread, out = _in_thread(lambda: client.get(f"/api/images/{image_id}/embedding"))
        time.sleep(2.0)  # an embedding of this picture takes ~1 s here
        assert thread.is_alive() and not out
    thread.join(120)
    assert out and out[0].status_code == 200 and len(out[0].data) > 2_000_000


def test_views_first_waits_for_every_view_and_gives_up_after_its_timeout():
    views = ViewsFirst()
    assert not views.busy() and views.wait_clear(0.01)
    with views.view(), views.view():
        assert views.busy()
        start = time.monotonic()
        assert not views.wait_clear(0.2)
        assert time.monotonic() - start >= 0.2
    assert not views.busy()
    release = threading.Event()

    def cut() -> None:
        with views.view():
            release.wait(5)

    thread = threading.Thread(target=cut)
    thread.start()
    while not views.busy():
        time.sleep(0.01)
    threading.Timer(0.3, release.set).start()
    start = time.monotonic()
    assert views.wait_clear(5.0)
    assert 0.2 <= time.monotonic() - start < 4.0
    thread.join()
