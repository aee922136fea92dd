"""Work assignment (leases), review and provenance, with accounts on, on both stores."""

from __future__ import annotations

import threading
import time

import pytest
from support.data import square_mask

from maskloop import masks
from maskloop.server.store import accounts, leases
from maskloop.server.store.db import connect, open_database

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def people(app, database) -> dict[str, accounts.NewAccount]:
    conn = open_database(database)
    try:
        names = {"ann": "annotator", "bob": "annotator", "rev": "reviewer", "root": "admin"}
        return {name: accounts.add_account(conn, name, role) for name, role in names.items()}
    finally:
        conn.close()


def as_(client, person: accounts.NewAccount):
    """Request helpers that send ``person``'s bearer token."""
    headers = {"Authorization": f"Bearer {person.token}"}

    def call(method: str, url: str, body: dict | None = None):
        return client.open(url, method=method, headers=headers, json=body)

    return call


def test_next_image_is_never_held_twice_and_expires(app, client, people, database):
    ann, bob = as_(client, people["ann"]), as_(client, people["bob"])
    first = ann("POST", "/api/work/next").get_json()["image"]
    assert ann("POST", "/api/work/next").get_json()["image"]["id"] == first["id"]  # the one it holds
    second = bob("POST", "/api/work/next").get_json()["image"]
    assert second["id"] != first["id"]
    assert ann("POST", f"/api/work/{first['id']}/renew").status_code == 200
    assert bob("POST", f"/api/work/{first['id']}/renew").status_code == 409
    refused = bob("POST", f"/api/work/{first['id']}/release")  # not bob's: 409, and ann keeps it
    assert refused.status_code == 409 and "not held by bob" in refused.get_json()["error"]
    assert ann("POST", f"/api/work/{first['id']}/renew").status_code == 200

    admin = as_(client, people["root"])
    cat = admin("POST", "/api/categories", {"name": "thing"}).get_json()["id"]
    mask = masks.encode(square_mask(second["height"], second["width"], 1, 1, 6, 6))
    refused = ann("POST", f"/api/images/{second['id']}/annotations", {"category_id": cat, "segmentation": mask})
    assert refused.status_code == 409 and "not held by ann" in refused.get_json()["error"]
    made = bob("POST", f"/api/images/{second['id']}/annotations", {"category_id": cat, "segmentation": mask})
    assert made.status_code == 201 and made.get_json()["author_id"] == people["bob"].account.id

    conn = connect(database)  # ann's lease runs out: the image is free for bob
    conn.execute("UPDATE image SET lease_until = ? WHERE id = ?", (time.time() - 1, first["id"]))
    conn.close()
    assert bob("PATCH", f"/api/images/{second['id']}", {"status": "done"}).status_code == 200
    assert bob("POST", "/api/work/next").get_json()["image"]["id"] == first["id"]
    assert ann("POST", f"/api/work/{first['id']}/renew").status_code == 409
    assert ann("POST", f"/api/work/{first['id']}/release").status_code == 409  # bob holds it now
    assert bob("POST", f"/api/work/{first['id']}/release").status_code == 204
    assert bob("POST", f"/api/work/{first['id']}/release").status_code == 409  # released already


def test_concurrent_takers_get_distinct_images(app, people, database):
    """Many accounts asking at once (own connections, like several server processes): no image twice."""
    conn = open_database(database)
    takers = [accounts.add_account(conn, f"t{i}", "annotator").account.id for i in range(6)]
    free = conn.execute("SELECT count(*) FROM image WHERE missing = 0 AND error IS NULL AND done = 0").fetchone()[0]
    conn.close()
    got: list[int | None] = []
    lock = threading.Lock()

    def take(account_id: int) -> None:
        own = connect(database)
        try:
            image_id = leases.take_next(own, account_id, "annotate", 60.0)
        finally:
            own.close()
        with lock:
            got.append(image_id)

    threads = [threading.Thread(target=take, args=(a,)) for a in takers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = [i for i in got if i is not None]
    assert len(held) == min(free, len(takers)) and len(set(held)) == len(held)


def test_review_accept_reject_and_provenance(app, client, people):
    ann, rev, admin = as_(client, people["ann"]), as_(client, people["rev"]), as_(client, people["root"])
    cat = admin("POST", "/api/categories", {"name": "thing"}).get_json()["id"]
    image = ann("POST", "/api/work/next").get_json()["image"]
    mask = masks.encode(square_mask(image["height"], image["width"], 2, 2, 9, 9))
    ann_id = ann(
        "POST", f"/api/images/{image['id']}/annotations", {"category_id": cat, "segmentation": mask}
    ).get_json()["id"]
    assert rev("POST", "/api/work/review/next").get_json()["image"] is None  # nothing finished yet
    assert ann("POST", "/api/work/review/next").status_code == 403  # annotators do not review
    assert ann("PATCH", f"/api/images/{image['id']}", {"status": "done"}).status_code == 200

    assert rev("POST", "/api/work/review/next").get_json()["image"]["id"] == image["id"]
    no_reason = rev("POST", f"/api/images/{image['id']}/review", {"decision": "reject"})
    assert no_reason.status_code == 400
    rejected = rev("POST", f"/api/images/{image['id']}/review", {"decision": "reject", "reason": "too loose"})
    assert rejected.status_code == 200 and rejected.get_json()["review"] == "rejected"
    stored = admin("GET", f"/api/annotations/{ann_id}").get_json()
    assert stored["review"] == "rejected" and stored["review_reason"] == "too loose"
    assert stored["reviewer_id"] == people["rev"].account.id and stored["author_id"] == people["ann"].account.id

    again = ann("POST", "/api/work/next").get_json()["image"]  # back in the annotation queue, reason shown
    assert again["id"] == image["id"] and again["review_reason"] == "too loose"
    tighter = masks.encode(square_mask(image["height"], image["width"], 3, 3, 8, 8))
    assert ann("PATCH", f"/api/annotations/{ann_id}", {"segmentation": tighter}).status_code == 200
    assert ann("PATCH", f"/api/images/{image['id']}", {"status": "done"}).status_code == 200
    assert rev("POST", "/api/work/review/next").get_json()["image"]["id"] == image["id"]
    corrected = rev("PATCH", f"/api/annotations/{ann_id}", {"segmentation": mask})  # the reviewer corrects it
    assert corrected.status_code == 200
    accepted = rev("POST", f"/api/images/{image['id']}/review", {"decision": "accept"})
    assert accepted.status_code == 200 and accepted.get_json()["review"] == "reviewed"

    exported = rev("GET", "/api/export/coco?review=reviewed").get_json()
    assert [a["id"] for a in exported["annotations"]] == [ann_id]
    assert exported["annotations"][0]["author"] == "ann" and exported["annotations"][0]["reviewer"] == "rev"
    assert rev("GET", "/api/export/coco?review=rejected").get_json()["annotations"] == []
    assert rev("GET", "/api/export/coco?review=maybe").status_code == 400

    stats = rev("GET", "/api/stats").get_json()
    by_name = {p["name"]: p for p in stats["annotators"]}
    assert by_name["ann"]["masks"] == 1 and by_name["ann"]["reviews"] == 2 and by_name["ann"]["rejection_rate"] == 0.5
    reviewers = {p["name"]: p for p in stats["reviewers"]}
    assert reviewers["rev"]["images_reviewed"] == 1 and reviewers["rev"]["images_rejected"] == 1


def test_review_mask_by_mask_and_take_one_from_the_list(app, client, people, database):
    """A reviewer picks a finished image by id, accepts one mask and rejects another with a reason;
    the image decision then leaves those two as decided. Names of author and reviewer are shown."""
    ann, bob, rev, admin = (as_(client, people[n]) for n in ("ann", "bob", "rev", "root"))
    cat = admin("POST", "/api/categories", {"name": "thing"}).get_json()["id"]
    image = ann("POST", "/api/work/next").get_json()["image"]
    made = []
    for x in (2, 12, 22):
        mask = masks.encode(square_mask(image["height"], image["width"], x, 2, x + 6, 8))
        body = {"category_id": cat, "segmentation": mask}
        made.append(ann("POST", f"/api/images/{image['id']}/annotations", body).get_json()["id"])
    first = admin("GET", f"/api/annotations/{made[0]}").get_json()
    assert first["author"] == "ann" and first["reviewer"] is None and first["review"] is None

    decide = {"decision": "accept"}
    assert rev("POST", f"/api/annotations/{made[0]}/review", decide).status_code == 409  # not finished yet
    assert rev("POST", f"/api/work/review/{image['id']}").status_code == 409  # not waiting for review
    assert ann("PATCH", f"/api/images/{image['id']}", {"status": "done"}).status_code == 200
    assert ann("POST", f"/api/work/review/{image['id']}").status_code == 403
    assert ann("POST", f"/api/annotations/{made[0]}/review", decide).status_code == 403
    assert rev("POST", f"/api/annotations/{made[0]}/review", decide).status_code == 409  # not held yet
    taken = rev("POST", f"/api/work/review/{image['id']}")
    assert taken.status_code == 200 and taken.get_json()["image"]["id"] == image["id"]
    conn = open_database(database)
    other = as_(client, accounts.add_account(conn, "rev2", "reviewer"))
    conn.close()
    assert other("POST", f"/api/work/review/{image['id']}").status_code == 409  # held by rev
    assert bob("POST", "/api/work/next").get_json()["image"]["id"] != image["id"]

    accepted = rev("POST", f"/api/annotations/{made[0]}/review", decide)
    assert accepted.status_code == 200 and accepted.get_json()["review"] == "reviewed"
    assert rev("POST", f"/api/annotations/{made[1]}/review", {"decision": "reject"}).status_code == 400
    rejected = rev("POST", f"/api/annotations/{made[1]}/review", {"decision": "reject", "reason": "two cats"})
    assert rejected.get_json()["review"] == "rejected" and rejected.get_json()["reviewer"] == "rev"
    assert rev("POST", f"/api/images/{image['id']}/review", decide).get_json()["review"] == "reviewed"
    after = {a["id"]: a for a in rev("GET", f"/api/images/{image['id']}/annotations").get_json()}
    assert [after[i]["review"] for i in made] == ["reviewed", "rejected", "reviewed"]
    assert after[made[1]]["review_reason"] == "two cats" and {a["reviewer"] for a in after.values()} == {"rev"}
    reviewed = rev("GET", "/api/export/coco?review=reviewed").get_json()["annotations"]
    assert sorted(a["id"] for a in reviewed) == [made[0], made[2]]
    assert rev("POST", f"/api/annotations/{made[0]}/review", decide).status_code == 409  # decided: not waiting

    # finishing the image again starts a new round: no mask is decided any more
    assert admin("PATCH", f"/api/images/{image['id']}", {"status": "in_progress"}).status_code == 200
    assert admin("PATCH", f"/api/images/{image['id']}", {"status": "done"}).status_code == 200
    again = rev("GET", f"/api/images/{image['id']}/annotations").get_json()
    assert {a["review"] for a in again} == {None}
