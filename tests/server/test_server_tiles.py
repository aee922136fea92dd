"""Large images on the server: tiled embeddings computed on demand and prompts routed to them
(``maskloop.tiles``), with the real default model and decoder on the CPU."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.data import image_ids

from maskloop.exporter.decoder_runtime import OnnxDecoder
from maskloop.tiles import Tiling, route_prompt

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
W, H = 3000, 2000
CAT_AT = (2150, 1450)  # where chelsea.jpg's top-left corner is pasted (image pixels)


@pytest.fixture
def large_client(photo_app, tmp_path):
    folder = tmp_path / "large"
    folder.mkdir()
    rng = np.random.default_rng(3)
    ground = np.clip(120 + rng.normal(0, 12, (H // 8, W // 8, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(ground).resize((W, H), Image.Resampling.BILINEAR)
    image.paste(Image.open(ROOT / "sample_images/chelsea.jpg").convert("RGB"), CAT_AT)
    image.save(folder / "field.png")
    app = photo_app(DATA_DIR=str(folder))
    client = app.test_client()
    return client, app.extensions["maskloop"], image_ids(client)["field.png"]


def logits_of(reply: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(reply["low_res_logits"]), "<f4").reshape(reply["shape"])


def test_a_click_on_a_large_image_is_decoded_on_its_tile(large_client):
    client, svc, image = large_client
    tiling = client.get("/api/model").get_json()["tiling"]
    assert tiling == {"tile": 1024, "overlap": 256, "threshold": 2048, "crop_padding": 0.125}
    click = [CAT_AT[0] + 200, CAT_AT[1] + 150]
    r = client.post(f"/api/images/{image}/decode", json={"points": [[*click, 1]]})
    assert r.status_code == 200, r.get_json()
    reply = r.get_json()
    route = route_prompt([click], None, W, H, Tiling(**tiling))
    assert reply["region"] == list(route.region) and route.kind == "tile"
    x0, y0, x1, y1 = route.region
    assert x1 - x0 == 1024 and y1 - y0 == 1024 and x0 <= click[0] < x1 and y0 <= click[1] < y1
    # the tile's embedding was computed by that click and is cached under its box
    assert [p.name.split("@")[1] for p in svc.embeddings.cache.dir.glob("*@*.npy")] == [f"{x0}_{y0}_{x1}_{y1}.npy"]
    served = client.get(f"/api/images/{image}/embedding?tile={x0},{y0},{x1},{y1}")
    assert served.status_code == 200 and served.headers["ETag"].strip('"').endswith(f"{x0}_{y0}_{x1}_{y1}")
    embedding = np.load(io.BytesIO(served.data))
    reference = OnnxDecoder(svc.model.onnx_dir, "fp32")
    want = reference.predict(embedding, (1024, 1024), np.array([[click[0] - x0, click[1] - y0]], float), np.array([1]))
    assert np.allclose(logits_of(reply), want.low_res_logits, atol=1e-4)
    # in full-image pixels, the best mask lies on the pasted cat (the ground around it is plain)
    best = int(np.argmax(reply["iou"]))
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = want.masks[best]
    cat = np.zeros((H, W), bool)
    cat[CAT_AT[1] : CAT_AT[1] + 300, CAT_AT[0] : CAT_AT[0] + 451] = True
    assert mask.sum() > 2000 and (mask & cat).sum() / mask.sum() > 0.95


@pytest.mark.parametrize("tile", ["1,2,3", "0,0,5000,100", "x,0,10,10", "0,0,4,4"])
def test_a_bad_tile_is_refused_in_one_line(large_client, tile):
    client, _, image = large_client
    r = client.get(f"/api/images/{image}/embedding?tile={tile}")
    assert r.status_code == 400 and r.get_json()["error"].startswith("tile: ")


def tile_etag(svc, image_file: Path, region: str) -> str:
    sha = hashlib.sha256(image_file.read_bytes()).hexdigest()
    return f'"{sha}-{svc.model.model_id}-float16-{region.replace(",", "_")}"'


@pytest.mark.parametrize(
    "tile",
    [
        "659,0,1683,1024",  # a tile of the grid (x starts 0, 659, 1317, 1976; y starts 0, 488, 976)
        "1976,976,3000,2000",  # the last tile
        "500,500,1100,1100",  # a square crop around a prompt no tile holds
        "1,0,1025,1024",  # a crop may be the size of a tile, anywhere
        "100,0,2600,2000",  # a crop cut by the image's top and bottom edges
    ],
)
def test_a_tile_or_crop_that_routing_gives_is_served(large_client, tile):
    client, svc, image = large_client
    field = Path(client.application.config["DATA_DIR"]) / "field.png"
    etag = tile_etag(svc, field, tile)
    r = client.get(f"/api/images/{image}/embedding?tile={tile}", headers={"If-None-Match": etag})
    assert r.status_code == 304, r.get_json()  # accepted (the cached answer, nothing computed)


@pytest.mark.parametrize(
    "tile",
    [
        "1,0,1025,1023",  # off the grid, and not square
        "0,0,1200,800",  # not square, though the image does not cut it
        "100,100,300,300",  # smaller than any prompt no tile holds
        "0,0,3000,2000",  # the whole image: its own embedding answers such a prompt
        "2500,0,3000,1200",  # cut by the right edge but not as wide as the rest of the image allows
    ],
)
def test_a_region_that_routing_never_gives_is_refused(large_client, tile):
    client, svc, image = large_client
    r = client.get(f"/api/images/{image}/embedding?tile={tile}")
    assert r.status_code == 400 and r.get_json()["error"].startswith("tile: ")
    assert "\n" not in r.get_json()["error"]
    assert not list(svc.embeddings.cache.dir.glob("*@*.npy"))  # nothing was embedded
