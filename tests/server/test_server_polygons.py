"""Polygon editing on the server: a mask as rings (outer and holes) and back, and the routes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from support.data import image_ids

from maskloop import masks
from maskloop.masks import mask_iou
from maskloop.server.jobs.polygons import mask_rings, rings_to_mask


def holed(h: int = 48, w: int = 64) -> np.ndarray:
    """Two parts, one with two holes."""
    mask = np.zeros((h, w), np.uint8)
    cv2.rectangle(mask, (4, 4), (40, 40), 1, -1)
    mask[10:16, 10:18] = 0
    mask[24:30, 25:33] = 0
    cv2.circle(mask, (54, 12), 6, 1, -1)
    return mask


def test_rings_round_trip_exactly_and_holes_stay_holes():
    rng = np.random.default_rng(1)
    cases = [holed()]
    for _ in range(20):
        m = np.zeros((60, 80), np.uint8)
        for _ in range(3):
            cv2.ellipse(
                m,
                (int(rng.integers(10, 70)), int(rng.integers(10, 50))),
                (int(rng.integers(3, 20)), int(rng.integers(3, 15))),
                float(rng.uniform(0, 180)),
                0,
                360,
                1,
                -1,
            )
        for _ in range(3):
            cv2.circle(m, (int(rng.integers(10, 70)), int(rng.integers(10, 50))), int(rng.integers(1, 4)), 0, -1)
        cases.append(m)
    for mask in cases:
        rings = mask_rings(mask)
        assert np.array_equal(rings_to_mask(rings, *mask.shape), mask)
    rings = mask_rings(holed())
    assert sorted(r["hole"] for r in rings) == [False, False, True, True]


def test_tolerance_simplifies():
    yy, xx = np.mgrid[0:200, 0:200]
    disc = (np.hypot(xx - 100, yy - 100) < 80).astype(np.uint8)
    exact, coarse = mask_rings(disc), mask_rings(disc, 2.0)
    assert len(coarse[0]["points"]) < len(exact[0]["points"]) / 4
    assert mask_iou(rings_to_mask(coarse, 200, 200).astype(bool), disc.astype(bool)) > 0.98


def post_mask(client, mask: np.ndarray) -> dict:
    ids = image_ids(client)
    cat = client.post("/api/categories", json={"name": "thing"}).get_json()["id"]
    r = client.post(
        f"/api/images/{ids['a.jpg']}/annotations", json={"category_id": cat, "segmentation": masks.encode(mask)}
    )
    assert r.status_code == 201
    return r.get_json()


def test_polygon_routes_edit_the_stored_mask(client):
    ann = post_mask(client, holed())
    got = client.get(f"/api/annotations/{ann['id']}/polygons").get_json()
    assert got["tolerance"] == 0 and got["vertices"] == sum(len(r["points"]) // 2 for r in got["rings"])
    rings = got["rings"]
    # Drop the first hole and the small part: the square becomes whole but for one hole.
    (square,) = [r for r in rings if not r["hole"] and min(r["points"][0::2]) == 4]
    holes = [r for r in rings if r["hole"]]
    r = client.put(f"/api/annotations/{ann['id']}/polygons", json={"rings": [square, holes[1]]})
    assert r.status_code == 200
    saved = r.get_json()
    seg = dict(saved["segmentation"])
    mask = masks.decode(seg)
    expected = rings_to_mask([square, holes[1]], 48, 64)
    assert np.array_equal(mask, expected) and saved["area"] == int(expected.sum())
    assert not mask[:, 48:].any() and int((mask[4:41, 4:41] == 0).sum()) == 48
    assert saved["prompts"]["edits"][-1]["mode"] == "polygon"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "rings must be a non-empty list"),
        ({"rings": [{"points": [0, 0, 5, 0], "hole": False}]}, "at least 3 vertices"),
        ({"rings": [{"points": [0, 0, 5, 0, 5, "x"], "hole": False}]}, "finite number"),
        ({"rings": [{"points": [0, 0, 500, 0, 5, 5], "hole": False}]}, "leaves the image"),
        ({"rings": [{"points": [0, 0, 5, 0, 5, 5], "hole": True}]}, "at least one outer ring"),
        ({"rings": [{"points": [1, 1, 1, 1, 1, 1], "hole": False}]}, "enclose no pixel"),
    ],
)
def test_bad_rings_are_refused_and_change_nothing(client, body, fragment):
    ann = post_mask(client, holed())
    r = client.put(f"/api/annotations/{ann['id']}/polygons", json=body)
    assert r.status_code == 400 and fragment in r.get_json()["error"]
    assert client.get(f"/api/annotations/{ann['id']}").get_json()["segmentation"] == ann["segmentation"]


def test_bad_tolerance_is_refused(client):
    ann = post_mask(client, holed())
    for bad in ("-1", "nan", "abc", "51"):
        r = client.get(f"/api/annotations/{ann['id']}/polygons?tolerance={bad}")
        assert r.status_code == 400 and "tolerance" in r.get_json()["error"]
    assert client.get("/api/annotations/999999/polygons").status_code == 404
