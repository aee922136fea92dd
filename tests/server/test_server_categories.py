"""Categories managed in the page: rename, recolour, reorder, delete (refused while used, or with
the masks moved to another category, recorded in their history)."""

from __future__ import annotations

from support.data import square_mask

from maskloop import masks


def _cats(client, *names):
    return [client.post("/api/categories", json={"name": n}).get_json()["id"] for n in names]


def test_rename_recolour_and_reorder(client):
    cat, dog, bird = _cats(client, "cat", "dog", "bird")
    assert client.patch(f"/api/categories/{dog}", json={"name": "puppy", "color": "#00FF00"}).status_code == 200
    r = client.put("/api/categories/order", json={"ids": [bird, cat, dog]})
    assert r.status_code == 200
    assert [(c["name"], c["position"]) for c in r.get_json()] == [("bird", 0), ("cat", 1), ("puppy", 2)]
    listed = client.get("/api/categories").get_json()
    assert [c["name"] for c in listed] == ["bird", "cat", "puppy"] and listed[2]["color"] == "#00ff00"
    (fish,) = _cats(client, "fish")  # a new one comes last
    assert [c["id"] for c in client.get("/api/categories").get_json()] == [bird, cat, dog, fish]
    for bad in ({"ids": [bird, cat]}, {"ids": [bird, cat, dog, fish, fish]}, {"ids": "all"}, {"ids": [1.5]}, {}):
        r = client.put("/api/categories/order", json=bad)
        assert r.status_code == 400 and "\n" not in r.get_json()["error"], bad
    assert [c["id"] for c in client.get("/api/categories").get_json()] == [bird, cat, dog, fish]


def test_delete_is_refused_while_used_or_moves_the_masks(client, data_dir):
    cat, dog = _cats(client, "cat", "dog")
    image = next(im for im in client.get("/api/images").get_json() if im["file_name"] == "a.jpg")
    mask = masks.encode(square_mask(image["height"], image["width"], 1, 1, 6, 6))
    made = client.post(f"/api/images/{image['id']}/annotations", json={"category_id": dog, "segmentation": mask})
    mask_id = made.get_json()["id"]

    r = client.delete(f"/api/categories/{dog}")
    assert r.status_code == 409 and "move them (?move_to=ID)" in r.get_json()["error"]
    assert client.delete(f"/api/categories/{dog}?move_to={dog}").status_code == 400
    assert client.delete(f"/api/categories/{dog}?move_to=999").status_code == 404
    assert client.delete(f"/api/categories/{dog}?move_to=x").status_code == 400
    assert client.delete(f"/api/categories/{dog}?move_to={cat}").status_code == 204
    assert client.get(f"/api/annotations/{mask_id}").get_json()["category_id"] == cat
    assert [c["name"] for c in client.get("/api/categories").get_json()] == ["cat"]
    trail = client.get(f"/api/images/{image['id']}/history").get_json()
    assert [(h["action"], h["changed"], h["category_id"]) for h in trail][-1] == ("change", ["category_id"], cat)
