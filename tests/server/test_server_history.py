"""Masks do not change hands without a trace: history of every create, change and delete with who
and when, the last editor beside the author, deleted masks kept for reviewers, and nobody
reviewing their own work (accounts on, both stores)."""

from __future__ import annotations

import time

import pytest
from support.data import square_mask

from maskloop import masks
from maskloop.server.store import accounts
from maskloop.server.store.db import connect, open_database

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def people(app, database) -> dict[str, accounts.NewAccount]:
    conn = open_database(database)
    try:
        names = {"ann1": "annotator", "ann2": "annotator", "rev": "reviewer", "rev2": "reviewer", "root": "admin"}
        return {name: accounts.add_account(conn, name, role) for name, role in names.items()}
    finally:
        conn.close()


def as_(client, person: accounts.NewAccount):
    headers = {"Authorization": f"Bearer {person.token}"}

    def call(method: str, url: str, body: dict | None = None):
        return client.open(url, method=method, headers=headers, json=body)

    return call


def _expire(database: str, image_id: int) -> None:
    conn = connect(database)
    conn.execute("UPDATE image SET lease_until = ? WHERE id = ?", (time.time() - 1, image_id))
    conn.close()


def test_a_mask_rewritten_by_another_annotator_says_so_and_a_deletion_is_kept(client, people, database):
    ann1, ann2, rev, root = (as_(client, people[n]) for n in ("ann1", "ann2", "rev", "root"))
    cat = root("POST", "/api/categories", {"name": "thing"}).get_json()["id"]
    image = ann1("POST", "/api/work/next").get_json()["image"]
    first = masks.encode(square_mask(image["height"], image["width"], 1, 1, 6, 6))
    made = ann1("POST", f"/api/images/{image['id']}/annotations", {"category_id": cat, "segmentation": first})
    assert made.status_code == 201
    mask_id = made.get_json()["id"]
    other = ann1("POST", f"/api/images/{image['id']}/annotations", {"category_id": cat, "segmentation": first})
    other_id = other.get_json()["id"]

    _expire(database, image["id"])  # ann1's lease runs out: the image is back in the queue
    assert ann2("POST", "/api/work/next").get_json()["image"]["id"] == image["id"]
    second = masks.encode(square_mask(image["height"], image["width"], 2, 2, 9, 9))
    changed = ann2("PATCH", f"/api/annotations/{mask_id}", {"segmentation": second}).get_json()
    assert changed["author"] == "ann1" and changed["editor"] == "ann2"  # never ann1 alone for ann2's content
    assert ann2("DELETE", f"/api/annotations/{other_id}").status_code == 204

    trail = rev("GET", f"/api/images/{image['id']}/history").get_json()
    assert [(h["annotation_id"], h["action"], h["actor"]) for h in trail] == [
        (mask_id, "create", "ann1"),
        (other_id, "create", "ann1"),
        (mask_id, "change", "ann2"),
        (other_id, "delete", "ann2"),
    ]
    assert trail[2]["changed"] == ["area", "bbox", "editor_id", "rle_counts", "rle_height", "rle_width"]
    assert all(h["at"] for h in trail)
    deleted = rev("GET", f"/api/images/{image['id']}/history?deleted=1").get_json()
    assert [d["annotation_id"] for d in deleted] == [other_id]
    assert deleted[0]["segmentation"] == first and deleted[0]["author"] == "ann1"  # the mask as it was
    assert root("GET", f"/api/images/{image['id']}/history").status_code == 200
    refused = ann2("GET", f"/api/images/{image['id']}/history")
    assert refused.status_code == 403  # annotators do not read others' trails
    assert rev("GET", f"/api/images/{image['id']}/history?deleted=yes").status_code == 400


def test_nobody_reviews_their_own_work(app, client, people, database):
    ann1, rev, rev2, root = (as_(client, people[n]) for n in ("ann1", "rev", "rev2", "root"))
    cat = root("POST", "/api/categories", {"name": "thing"}).get_json()["id"]
    # rev annotates an image and finishes it (reviewers may annotate too)
    image = rev("POST", "/api/work/next").get_json()["image"]
    mask = masks.encode(square_mask(image["height"], image["width"], 1, 1, 6, 6))
    mask_id = rev("POST", f"/api/images/{image['id']}/annotations", {"category_id": cat, "segmentation": mask})
    mask_id = mask_id.get_json()["id"]
    assert rev("PATCH", f"/api/images/{image['id']}", {"status": "done"}).status_code == 200

    assert rev("POST", "/api/work/review/next").get_json()["image"] is None  # not handed their own image
    took = rev("POST", f"/api/work/review/{image['id']}")
    assert took.status_code == 409 and "rev's own work" in took.get_json()["error"]
    own_mask = rev("POST", f"/api/annotations/{mask_id}/review", {"decision": "accept"})
    assert own_mask.status_code == 409 and "own work" in own_mask.get_json()["error"]
    own_image = rev("POST", f"/api/images/{image['id']}/review", {"decision": "accept"})
    assert own_image.status_code == 409

    assert rev2("POST", "/api/work/review/next").get_json()["image"]["id"] == image["id"]  # another reviewer may
    assert rev2("POST", f"/api/annotations/{mask_id}/review", {"decision": "accept"}).status_code == 200
    assert rev2("POST", f"/api/images/{image['id']}/review", {"decision": "accept"}).status_code == 200
    assert ann1("GET", "/api/images").status_code == 200


def test_a_team_of_one_may_review_its_own_work_when_allowed(app, client, database):
    conn = open_database(database)
    solo = accounts.add_account(conn, "solo", "admin")
    conn.close()
    me = as_(client, solo)
    cat = me("POST", "/api/categories", {"name": "thing"}).get_json()["id"]
    image = me("POST", "/api/work/next").get_json()["image"]
    mask = masks.encode(square_mask(image["height"], image["width"], 1, 1, 6, 6))
    assert (
        me("POST", f"/api/images/{image['id']}/annotations", {"category_id": cat, "segmentation": mask}).status_code
        == 201
    )
    assert me("PATCH", f"/api/images/{image['id']}", {"status": "done"}).status_code == 200
    assert me("POST", f"/api/images/{image['id']}/review", {"decision": "accept"}).status_code == 409
    app.config["SELF_REVIEW"] = True
    assert me("POST", "/api/work/review/next").get_json()["image"]["id"] == image["id"]
    assert me("POST", f"/api/images/{image['id']}/review", {"decision": "accept"}).status_code == 200
