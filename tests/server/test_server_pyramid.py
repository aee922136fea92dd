"""The tile pyramid of large images: manifest, tiles against the original, bad requests, TIFF
pixel size in the COCO export, and large images listed and thumbnailed without a whole decode."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.large_images import write_large_jpeg, write_large_tiff

W, H = 5000, 3000


@pytest.fixture
def large_dir(tmp_path) -> Path:
    root = tmp_path / "large"
    root.mkdir()
    write_large_jpeg(root / "field.jpg", W, H)
    write_large_tiff(root / "slide.tif", 3000, 2500, microns_per_pixel=0.25)
    Image.new("RGB", (640, 480), (90, 120, 30)).save(root / "small.jpg")
    return root


@pytest.fixture
def large_client(large_dir, photo_app):
    return photo_app(DATA_DIR=str(large_dir)).test_client()


def _ids(client) -> dict[str, dict]:
    return {im["file_name"]: im for im in client.get("/api/images").get_json()}


def _tile(client, url: str, timeout: float = 60.0) -> np.ndarray:
    """A tile as HxWx3 uint8, waiting while its level is still being cut (503)."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(url)
        if r.status_code != 503 or time.monotonic() > deadline:
            break
        assert r.get_json()["error"] and r.headers["Retry-After"]
        time.sleep(0.2)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.mimetype == "image/jpeg" and "immutable" in r.headers["Cache-Control"]
    return np.asarray(Image.open(io.BytesIO(r.data)).convert("RGB"))


def test_pyramid_levels_and_tiles_match_the_original(large_client, large_dir):
    images = _ids(large_client)
    field = images["field.jpg"]
    assert (field["width"], field["height"], field["pyramid"]) == (W, H, True)
    assert "pyramid" not in images["small.jpg"]
    m = large_client.get(f"/api/images/{field['id']}/pyramid").get_json()
    assert (m["width"], m["height"], m["tile_size"], m["levels"]) == (W, H, 512, 14)  # 2**13 >= 5000
    assert m["level_sizes"][-1] == [W, H] and m["level_sizes"][0] == [1, 1]
    assert m["level_sizes"][-2] == [2500, 1500] and m["coarse_levels"] == 12  # 1250x750 is the finest coarse
    url = m["tile_url"]
    original = np.asarray(Image.open(large_dir / "field.jpg").convert("RGB")).astype(np.int16)

    # a full-resolution tile is the original's crop (JPEG re-encoding aside)
    top = m["levels"] - 1
    tile = _tile(large_client, url.format(level=top, col=3, row=2))
    assert tile.shape == (512, 512, 3)
    crop = original[1024:1536, 1536:2048]
    assert np.abs(tile.astype(np.int16) - crop).mean() < 4
    # an edge tile is cut at the image's border
    edge = _tile(large_client, url.format(level=top, col=9, row=5))
    assert edge.shape == (H - 5 * 512, W - 9 * 512, 3)
    # a coarse tile (from the thumbnail) is the original shrunk 4x
    coarse = _tile(large_client, url.format(level=top - 2, col=1, row=0)).astype(np.int16)
    assert coarse.shape == (512, 512, 3)
    shrunk = original[: 512 * 4, 2048 : 2048 + 2048].reshape(512, 4, 512, 4, 3).mean(axis=(1, 3))
    assert np.abs(coarse - shrunk).mean() < 6
    # a different place of the image does not match (the comparison means something)
    assert np.abs(tile.astype(np.int16) - original[0:512, 0:512]).mean() > 10


def test_bad_tile_requests_are_json_errors(large_client):
    images = _ids(large_client)
    field, small = images["field.jpg"], images["small.jpg"]
    base = f"/api/images/{field['id']}/pyramid"
    for path, status in [
        (f"{base}/14/0_0.jpg", 404),  # no level 14 (0..13)
        (f"{base}/13/10_0.jpg", 404),  # 10 columns at the top level: 0..9
        (f"{base}/0/1_0.jpg", 404),
        (f"{base}/x/0_0.jpg", 400),
        (f"{base}/3/0-0.jpg", 400),
        (f"{base}/3/-1_0.jpg", 400),
        (f"/api/images/{small['id']}/pyramid", 404),  # small: shown whole
        (f"/api/images/{small['id']}/pyramid/0/0_0.jpg", 404),
        ("/api/images/999999/pyramid", 404),
    ]:
        r = large_client.get(path)
        assert r.status_code == status, (path, r.status_code)
        assert r.is_json and r.get_json()["error"], path


def test_tiff_opens_as_a_pyramid_and_keeps_its_pixel_size_in_coco(large_client):
    slide = _ids(large_client)["slide.tif"]
    assert (slide["width"], slide["height"], slide["pyramid"]) == (3000, 2500, True)
    m = large_client.get(f"/api/images/{slide['id']}/pyramid").get_json()
    tile = _tile(large_client, m["tile_url"].format(level=m["levels"] - 1, col=5, row=4))
    assert tile.shape == (2500 - 4 * 512, 3000 - 5 * 512, 3)
    coco = large_client.get("/api/export/coco").get_json()
    records = {im["file_name"]: im for im in coco["images"]}
    size = records["slide.tif"]["pixel_size"]
    assert size["unit"] == "µm" and size["x"] == pytest.approx(0.25) and size["y"] == pytest.approx(0.25)
    assert "pixel_size" not in records["field.jpg"]


def test_a_large_image_thumbnail_is_made_without_pillow_decoding_it(large_client, large_dir):
    field = _ids(large_client)["field.jpg"]
    r = large_client.get(f"/api/images/{field['id']}/thumbnail")
    assert r.status_code == 200
    thumb = Image.open(io.BytesIO(r.data))
    assert thumb.size == (128, 77)


def test_precut_cuts_coarse_levels_then_the_full_pyramid_in_the_background(large_dir, tmp_path):
    from maskloop.server.jobs.pyramid import Geometry, PyramidCache

    cache = PyramidCache(tmp_path / "pyramids")
    geometry = Geometry(W, H)
    cache.precut([("a" * 64, large_dir / "field.jpg", geometry, 1)])
    folder = tmp_path / "pyramids" / ("a" * 64)
    deadline = time.monotonic() + 60
    while not (folder / "full").is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)
    cache.shutdown()
    top = geometry.levels - 1
    assert sorted(int(p.name) for p in (folder / "coarse").iterdir()) == list(range(geometry.coarse_top + 1))
    assert sorted(int(p.name) for p in (folder / "full").iterdir() if p.is_dir()) == list(range(top + 1))
    cols, rows = geometry.grid(top)
    assert len(list((folder / "full" / str(top)).glob("*.jpg"))) == cols * rows == 60
    assert not list(folder.glob("*.tmp"))


def _cut_children() -> list[int]:
    """Pids of this process's children that run the full pyramid cut."""
    import os

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"pyramid_cut" in cmdline:
            found.append(int(entry.name))
    return found


def test_the_full_cut_runs_in_a_child_at_a_low_priority_and_stops_with_the_server(tmp_path):
    """The full cut is a child at nice 10 (what the page waits for goes first); stopping the cache
    kills it and leaves neither a pyramid nor a half-written folder."""
    import os

    from maskloop.server.jobs.pyramid import PyramidCache
    from maskloop.server.jobs.pyramid_cut import NICENESS

    write_large_jpeg(tmp_path / "big.jpg", 9000, 6000)
    cache = PyramidCache(tmp_path / "pyramids")
    future = cache.start_full("b" * 64, tmp_path / "big.jpg")
    assert future is not None
    deadline = time.monotonic() + 30
    while not (children := _cut_children()) and time.monotonic() < deadline and not future.done():
        time.sleep(0.02)
    assert children, "no child process cut the pyramid"
    wanted, nice = min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS), None
    while nice != wanted and time.monotonic() < deadline:  # the child lowers itself once Python is up
        try:
            nice = int((Path("/proc") / str(children[0]) / "stat").read_text().rsplit(")", 1)[1].split()[16])
        except OSError:
            break
        time.sleep(0.02)
    assert nice == wanted
    cache.shutdown()
    with pytest.raises(RuntimeError):
        future.result(timeout=30)
    folder = tmp_path / "pyramids" / ("b" * 64)
    assert not (folder / "full").exists() and not list(folder.glob("*.tmp")) and not _cut_children()


def test_a_failed_full_cut_says_why_in_one_line(tmp_path):
    from maskloop.server.jobs.pyramid_cut import CutChildren

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(RuntimeError) as failure:
        CutChildren().cut(tmp_path / "broken.jpg", tmp_path / "out" / "full")
    message = str(failure.value)
    assert "\n" not in message and "broken.jpg" in message, message
    assert not (tmp_path / "out" / "full").exists() and not list(tmp_path.glob("**/*.tmp"))
