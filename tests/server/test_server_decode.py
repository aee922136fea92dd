"""``POST /api/images/<id>/decode``: the server's native decoder run, with the real default model on the CPU."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from support.data import image_ids

from maskloop.exporter.decoder_runtime import OnnxDecoder

pytestmark = pytest.mark.slow


@pytest.fixture
def photo_client(photo_app):
    app = photo_app()
    return app.test_client(), app.extensions["maskloop"]


def logits_of(reply: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(reply["low_res_logits"]), "<f4").reshape(reply["shape"])


def test_decode_gives_the_exported_decoders_logits_and_refines_with_them(photo_client):
    client, svc = photo_client
    cat = image_ids(client)["chelsea.jpg"]
    info = client.get(f"/api/images/{cat}").get_json()
    hw = (info["height"], info["width"])
    embedding = np.load(io.BytesIO(client.get(f"/api/images/{cat}/embedding").data))
    r = client.post(f"/api/images/{cat}/decode", json={"points": [[250, 150, 1]], "box": None})
    assert r.status_code == 200, r.get_json()
    reference = OnnxDecoder(svc.model.onnx_dir, "fp32")  # exported by the first decode
    # The server runs the page's split pair (prefix once per image), not the single graph.
    assert svc.model.native_decoder().prefix is not None
    first = r.get_json()
    assert first["shape"] == [4, 256, 256] and first["model_version"] == "base"
    want = reference.predict(embedding, hw, np.array([[250.0, 150.0]]), np.array([1]))
    assert np.allclose(logits_of(first), want.low_res_logits, atol=1e-4)
    assert np.allclose(first["iou"], want.iou, atol=1e-5)

    # A refining click feeds the best candidate's logits back, as the page does.
    best = int(np.argmax(first["iou"][1:])) + 1
    mask_input = logits_of(first)[best]
    body = {
        "points": [[250, 150, 1], [320, 220, 0]],
        "box": None,
        "mask_input": base64.b64encode(mask_input.astype("<f4").tobytes()).decode(),
    }
    second = client.post(f"/api/images/{cat}/decode", json=body).get_json()
    want2 = reference.predict(
        embedding, hw, np.array([[250.0, 150.0], [320.0, 220.0]]), np.array([1, 0]), None, mask_input
    )
    assert np.allclose(logits_of(second), want2.low_res_logits, atol=1e-4)
    assert not np.allclose(logits_of(second), logits_of(first), atol=1e-2)

    box = client.post(f"/api/images/{cat}/decode", json={"box": [100, 50, 400, 280]}).get_json()
    want3 = reference.predict(embedding, hw, None, None, np.array([100.0, 50.0, 400.0, 280.0]))
    assert np.allclose(logits_of(box), want3.low_res_logits, atol=1e-4)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 400, "at least one point or a box"),
        ({"points": [[1, 2]]}, 400, "points[0] must be [x, y, label]"),
        ({"points": [[1, 2, 5]]}, 400, "points[0] label"),
        ({"points": [[1e9, 2, 1]]}, 400, "points[0] x"),
        ({"points": "here"}, 400, "points must be a list"),
        ({"box": [10, 10, 5, 20]}, 400, "x0 <= x1"),
        ({"points": [[1, 2, 1]], "mask_input": "abc"}, 400, "mask_input must be base64"),
        ({"points": [[1, 2, 1]], "color": "red"}, 400, "unknown field(s) color"),
        ({"points": [[1, 2, 1]], "model_version": "v9999"}, 404, "not available"),
    ],
)
def test_decode_refuses_bad_input_in_one_line(photo_client, body, status, words):
    client, _ = photo_client
    cat = image_ids(client)["chelsea.jpg"]
    r = client.post(f"/api/images/{cat}/decode", json=body)
    assert r.status_code == status and words in r.get_json()["error"], r.get_json()


def test_decode_of_an_unknown_image_is_404(photo_client):
    client, _ = photo_client
    r = client.post("/api/images/999999/decode", json={"points": [[1, 2, 1]]})
    assert r.status_code == 404 and "not found" in r.get_json()["error"]
