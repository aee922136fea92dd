"""Categories and annotations over HTTP: CRUD, validation, what is stored."""

from __future__ import annotations

import numpy as np
import pytest
from support.data import image_ids, square_mask

from maskloop import masks

BACKENDS = ("sqlite", "postgresql")  # every test runs on both stores (tests/conftest.py)


@pytest.fixture
def ids(client):
    return image_ids(client)


@pytest.fixture
def cat(client):
    r = client.post("/api/categories", json={"name": "cat", "color": "#FF0000"})
    assert r.status_code == 201
    return r.get_json()


def rle_for(mask: np.ndarray) -> dict:
    return masks.encode(mask)


def test_categories_crud(client, cat):
    assert cat["id"] == 1 and cat["color"] == "#ff0000" and cat["name"] == "cat"
    dog = client.post("/api/categories", json={"name": "dog"}).get_json()
    assert dog["id"] == 2 and dog["color"].startswith("#")
    assert client.post("/api/categories", json={"name": "dog"}).status_code == 409
    assert client.post("/api/categories", json={"name": ""}).status_code == 400
    assert client.post("/api/categories", json={"name": "x", "color": "red"}).status_code == 400
    r = client.patch(f"/api/categories/{dog['id']}", json={"name": "puppy", "color": "#00ff00"})
    assert r.get_json()["name"] == "puppy" and r.get_json()["color"] == "#00ff00"
    assert client.patch(f"/api/categories/{dog['id']}", json={"name": "cat"}).status_code == 409
    assert [c["name"] for c in client.get("/api/categories").get_json()] == ["cat", "puppy"]
    assert client.delete(f"/api/categories/{dog['id']}").status_code == 204
    assert client.delete(f"/api/categories/{dog['id']}").status_code == 404


def test_create_list_patch_delete(client, ids, cat):
    image_id = ids["a.jpg"]  # 64 x 48
    mask = square_mask(48, 64, 10, 5, 30, 25)
    body = {
        "category_id": cat["id"],
        "segmentation": rle_for(mask),
        "clicks": 3,
        "seconds": 4.5,
        "prompts": {"points": [[20, 15, 1]]},
        "stage": "manual",
    }
    r = client.post(f"/api/images/{image_id}/annotations", json=body)
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    assert created["id"] == 1
    assert created["area"] == 400 and created["bbox"] == [10.0, 5.0, 20.0, 20.0]
    assert created["status"] == "accepted" and created["stage"] == "manual"
    assert created["clicks"] == 3 and created["seconds"] == 4.5 and created["prompts"] == {"points": [[20, 15, 1]]}
    assert created["model"].startswith("vit_t-")
    assert np.array_equal(masks.decode(created["segmentation"]), mask)

    listed = client.get(f"/api/images/{image_id}/annotations").get_json()
    assert [a["id"] for a in listed] == [1]
    image = client.get(f"/api/images/{image_id}").get_json()
    assert image["num_annotations"] == 1 and image["status"] == "in_progress"
    assert client.get("/api/categories").get_json()[0]["num_annotations"] == 1

    dog = client.post("/api/categories", json={"name": "dog"}).get_json()
    smaller = square_mask(48, 64, 0, 0, 2, 3)
    r = client.patch(
        "/api/annotations/1", json={"category_id": dog["id"], "segmentation": rle_for(smaller), "status": "rejected"}
    )
    assert r.status_code == 200
    patched = r.get_json()
    assert patched["category_id"] == dog["id"] and patched["area"] == 6 and patched["bbox"] == [0.0, 0.0, 2.0, 3.0]
    assert patched["status"] == "rejected" and patched["updated"] >= created["updated"]
    assert client.get(f"/api/images/{image_id}/annotations?status=accepted").get_json() == []
    assert client.delete(f"/api/categories/{dog['id']}").status_code == 409  # still used

    assert client.delete("/api/annotations/1").status_code == 204
    assert client.get("/api/annotations/1").status_code == 404
    assert client.delete("/api/annotations/1").status_code == 404
    assert client.patch("/api/annotations/1", json={"status": "accepted"}).status_code == 404


def test_proposals_count_separately(client, ids, cat):
    image_id = ids["b.png"]  # 30 x 40
    body = {
        "category_id": cat["id"],
        "segmentation": rle_for(square_mask(40, 30, 1, 1, 5, 5)),
        "status": "proposed",
        "stage": "semi",
        "predicted_iou": 0.93,
        "stability_score": 0.97,
    }
    created = client.post(f"/api/images/{image_id}/annotations", json=body).get_json()
    assert created["predicted_iou"] == 0.93 and created["stage"] == "semi"
    image = client.get(f"/api/images/{image_id}").get_json()
    assert image["num_annotations"] == 0 and image["num_proposed"] == 1 and image["status"] == "in_progress"


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"category_id": 1, "segmentation": {"size": [10, 10], "counts": "PP2"}}, "does not match the image"),
        ({"category_id": 1, "segmentation": {"size": [48, 64], "counts": "0"}}, "cover"),
        ({"category_id": 1, "segmentation": {"size": [48, 64], "counts": "bad counts ~~"}}, "invalid character"),
        ({"category_id": 1, "segmentation": {"size": [48, 64], "counts": [3072]}}, "empty"),
        ({"category_id": 1, "segmentation": {"size": [48, 64]}}, "RLE object"),
        ({"category_id": 1, "segmentation": [[1, 2, 3, 4, 5, 6]]}, "RLE object"),
        ({"category_id": 1}, "segmentation is required"),
        ({"category_id": 99, "segmentation": None}, "unknown category_id 99"),
        ({"category_id": "1", "segmentation": None}, "category_id must be an integer"),
        ({"segmentation": None}, "category_id must be an integer"),
        ({"category_id": 1, "segmentation": "RLE", "stage": "magic"}, "segmentation"),
        ({"category_id": 1, "clicks": -1, "segmentation": None}, "segmentation"),
        ({"category_id": 1, "colour": "red"}, "unknown field(s) colour"),
    ],
)
def test_validation_errors_are_one_line_4xx(client, ids, cat, body, fragment):
    r = client.post(f"/api/images/{ids['a.jpg']}/annotations", json=body)
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert fragment in error and "\n" not in error


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("stage", "magic", "stage must be one of"),
        ("status", "maybe", "status must be one of"),
        ("clicks", -1, "clicks must be an integer >= 0"),
        ("clicks", 1.5, "clicks must be an integer"),
        ("seconds", "long", "seconds must be a number"),
        ("seconds", -2, ">= 0"),
    ],
)
def test_field_validation(client, ids, cat, field, value, fragment):
    body = {"category_id": cat["id"], "segmentation": rle_for(square_mask(48, 64, 0, 0, 4, 4)), field: value}
    r = client.post(f"/api/images/{ids['a.jpg']}/annotations", json=body)
    assert r.status_code == 400 and fragment in r.get_json()["error"]


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_json_bodies(client, ids, cat, data, fragment):
    r = client.post(f"/api/images/{ids['a.jpg']}/annotations", data=data, content_type="application/json")
    assert r.status_code == 400 and fragment in r.get_json()["error"]
    r = client.post("/api/categories", data=data, content_type="application/json")
    assert r.status_code == 400 and fragment in r.get_json()["error"]


def test_uncompressed_rle_is_accepted_and_canonicalised(client, ids, cat):
    mask = square_mask(48, 64, 3, 4, 9, 7)
    from pycocotools import mask as mask_utils

    flat = np.asfortranarray(mask).flatten(order="F")
    runs, value, n = [], 0, 0
    for v in flat:
        if v != value:
            runs.append(n)
            value, n = v, 0
        n += 1
    runs.append(n)
    r = client.post(
        f"/api/images/{ids['a.jpg']}/annotations",
        json={"category_id": cat["id"], "segmentation": {"size": [48, 64], "counts": runs}},
    )
    assert r.status_code == 201
    assert r.get_json()["segmentation"]["counts"] == mask_utils.encode(np.asfortranarray(mask))["counts"].decode()


def test_cannot_annotate_an_unusable_image(client, ids, cat):
    r = client.post(
        f"/api/images/{ids['notes.jpg']}/annotations",
        json={"category_id": cat["id"], "segmentation": {"size": [1, 1], "counts": "01"}},
    )
    assert r.status_code == 422
    assert client.post("/api/images/999/annotations", json={}).status_code == 404


def test_api_404_405_are_json(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.get_json() == {"error": "not found: GET /api/nothing"}
    r = client.put("/api/categories")
    assert r.status_code == 405 and "allowed: GET, POST" in r.get_json()["error"]
