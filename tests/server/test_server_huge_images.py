"""An image past Pillow's decompression-bomb limit (a stand-in for a 20,000² photo: 10,000 x 9,000,
90 MP, 270 MB decoded) opens with the default config, and its whole-image embedding and its tiles
are computed without ever decoding it whole (the real default model on the CPU)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.large_images import textured

from maskloop.tiles import Tiling, route_prompt

pytestmark = pytest.mark.slow

W, H = 10_000, 9_000
PERIOD = (1237, 1111)  # the picture repeats a textured patch of this size
DECODED_MIB = W * H * 3 / 2**20  # 257 MiB


@pytest.fixture(scope="module")
def huge_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("huge")
    patch = textured(*PERIOD).copy_memory()  # type: ignore[attr-defined]
    patch.replicate(-(-W // PERIOD[0]), -(-H // PERIOD[1])).crop(0, 0, W, H).jpegsave(str(root / "huge.jpg"), Q=90)
    patch.jpegsave(str(root / "patch.jpg"), Q=100)
    Image.new("RGB", (640, 480), (90, 120, 30)).save(root / "small.jpg")
    assert W * H > (Image.MAX_IMAGE_PIXELS or 0)  # past Pillow's limit, the scan's default
    return root


@pytest.fixture
def client(huge_dir, tmp_path, onnx_dir):
    from maskloop.server.http.app import create_app

    data = tmp_path / "data"
    data.mkdir()
    for name in ("huge.jpg", "small.jpg"):
        shutil.copy(huge_dir / name, data / name)
    app = create_app(
        {"TESTING": True, "DATA_DIR": str(data), "WORKDIR": str(tmp_path / "w"), "ONNX_DIR": str(onnx_dir)}
        | {"PRECOMPUTE": False, "DEVICE": "cpu"}
    )
    yield app.test_client(), app.extensions["maskloop"]
    app.extensions["maskloop"].embeddings.stop()


def _ids(client) -> dict[str, dict]:
    return {im["file_name"]: im for im in client.get("/api/images").get_json()}


def _peak_growth_mib(request) -> tuple[object, float]:
    """(the request's answer, how far this process's peak RSS rose above its RSS before it, MiB)."""
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM (peak RSS) to the current RSS
        f.write("5")
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    before = int(status["VmRSS"].split()[0])
    answer = request()
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return answer, (int(status["VmHWM"].split()[0]) - before) / 1024


def test_a_huge_jpeg_opens_with_the_default_config(client):
    client, _ = client
    huge = _ids(client)["huge.jpg"]
    assert huge["status"] == "not_started" and not huge.get("error")
    assert (huge["width"], huge["height"], huge["pyramid"]) == (W, H, True)
    m = client.get(f"/api/images/{huge['id']}/pyramid").get_json()
    assert (m["width"], m["height"]) == (W, H)
    assert _ids(client)["huge.jpg"]["status"] == "not_started"


def test_its_whole_image_embedding_comes_from_the_overview(client, huge_dir):
    from maskloop.exporter.vips_image import thumbnail_rgb
    from maskloop.server.jobs.overview import embedding_pixels, forget, model_input, overview_size

    client, svc = client
    huge = _ids(client)["huge.jpg"]
    r = client.get(f"/api/images/{huge['id']}/embedding")
    assert r.status_code == 200, r.get_json()
    embedding = np.load(io.BytesIO(r.data))
    assert embedding.shape == (1, 256, 64, 64) and embedding.dtype == np.float16
    pixels = model_input(thumbnail_rgb(huge_dir / "huge.jpg", *overview_size(W, H)), (H, W), 1024)
    assert pixels.shape == (922, 1024, 3)  # SAM's input frame of the 10,000 x 9,000 image
    want = svc.model.embed([pixels])[0]
    assert np.abs(embedding[0].astype(np.float32) - want).max() < 0.02
    forget()  # what the embedding was computed from costs a small fraction of the decoded image
    (overview, hw), growth = _peak_growth_mib(lambda: embedding_pixels(huge_dir / "huge.jpg"))
    assert overview.shape == (1125, 1250, 3) and hw == (H, W)
    assert growth < DECODED_MIB / 4, f"peak RSS rose {growth:.0f} MiB: was the image decoded whole?"


def test_a_click_on_it_is_decoded_on_a_tile_read_as_a_region(client, huge_dir):
    from maskloop.exporter.regions import read_region

    client, _ = client
    huge = _ids(client)["huge.jpg"]
    click = [W - 300, H - 200]  # the bottom rows: the file is decoded down to them, a strip at a time
    tiling = Tiling(**client.get("/api/model").get_json()["tiling"])
    region = route_prompt([click], None, W, H, tiling).region
    x0, y0, x1, y1 = region
    assert (x1, y1) == (W, H) and x1 - x0 == y1 - y0 == 1024
    pixels, growth = _peak_growth_mib(lambda: read_region(huge_dir / "huge.jpg", region))
    assert growth < DECODED_MIB / 4, f"peak RSS rose {growth:.0f} MiB: was the image decoded whole?"
    patch = np.asarray(Image.open(huge_dir / "patch.jpg").convert("RGB"), np.int16)
    ys, xs = np.arange(y0, y1) % PERIOD[1], np.arange(x0, x1) % PERIOD[0]
    assert np.abs(pixels.astype(np.int16) - patch[ys][:, xs]).mean() < 4  # the right pixels, not a shifted region
    r = client.get(f"/api/images/{huge['id']}/embedding?tile={x0},{y0},{x1},{y1}")
    assert r.status_code == 200, r.get_json()
    assert np.load(io.BytesIO(r.data)).shape == (1, 256, 64, 64)
    r = client.post(f"/api/images/{huge['id']}/decode", json={"points": [[*click, 1]]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["region"] == list(region)
