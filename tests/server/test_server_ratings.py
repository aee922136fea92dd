"""1..10 mask ratings (issue 26): the API, who and when, statistics, and the COCO round trip."""

from __future__ import annotations

import json

import pytest
from support import cli
from support.data import image_ids, square_mask

from maskloop import masks
from maskloop.errors import UserError
from maskloop.server.jobs.coco import export_coco, import_coco
from maskloop.server.store import accounts
from maskloop.server.store.db import open_database

BACKENDS = ("sqlite", "postgresql")


def _mask(client, stage="manual", status="accepted", model_version=None, box=(10, 5, 30, 25)):
    ids = image_ids(client)
    cats = client.get("/api/categories").get_json()
    cat = cats[0]["id"] if cats else client.post("/api/categories", json={"name": "thing"}).get_json()["id"]
    body = {"category_id": cat, "segmentation": masks.encode(square_mask(48, 64, *box)), "stage": stage}
    body["status"] = status
    if model_version is not None:
        body["model_version"] = model_version
    r = client.post(f"/api/images/{ids['a.jpg']}/annotations", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def test_rating_one_and_ten_accepted_and_a_new_one_replaces(client):
    mask = _mask(client)
    first = client.post(f"/api/annotations/{mask}/rating", json={"rating": 1})
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["rating"] == 1 and first.get_json()["count"] == 1 and first.get_json()["rated"]
    again = client.post(f"/api/annotations/{mask}/rating", json={"rating": 10}).get_json()
    assert again["count"] == 1 and again["mean"] == 10 and again["ratings"][0]["rating"] == 10
    listed = client.get(f"/api/annotations/{mask}/rating").get_json()
    assert listed["count"] == 1 and listed["ratings"][0]["rater"] is None and listed["scale"]["10"] == "pixel-perfect"


@pytest.mark.parametrize("bad", [0, 11, 7.5, "8", [8], None, True, -3, 10**30])
def test_anything_but_an_integer_from_1_to_10_is_a_400(client, bad):
    mask = _mask(client)
    r = client.post(f"/api/annotations/{mask}/rating", json={"rating": bad})
    assert r.status_code == 400 and "integer from 1" in r.get_json()["error"]
    assert client.get(f"/api/annotations/{mask}/rating").get_json()["count"] == 0


def test_other_bodies_and_targets_are_refused(client):
    mask = _mask(client)
    assert client.post(f"/api/annotations/{mask}/rating", json={}).status_code == 400
    assert client.post(f"/api/annotations/{mask}/rating", json={"rating": 5, "x": 1}).status_code == 400
    assert client.post(f"/api/annotations/{mask}/rating", json=[5]).status_code == 400
    assert client.post(f"/api/annotations/{mask}/rating", data="{", content_type="application/json").status_code == 400
    assert client.post("/api/annotations/999/rating", json={"rating": 5}).status_code == 404
    proposal = _mask(client, status="proposed")
    r = client.post(f"/api/annotations/{proposal}/rating", json={"rating": 5})
    assert r.status_code == 409 and "accepted" in r.get_json()["error"]


def test_deleting_a_mask_deletes_its_ratings(client, database):
    mask = _mask(client)
    client.post(f"/api/annotations/{mask}/rating", json={"rating": 6})
    assert client.delete(f"/api/annotations/{mask}").status_code == 204
    conn = open_database(database)
    try:
        assert conn.execute("SELECT count(*) FROM rating").fetchone()[0] == 0
    finally:
        conn.close()


def test_in_a_team_each_reviewer_has_one_rating_annotators_none(app, client, database):
    conn = open_database(database)
    try:
        people = {n: accounts.add_account(conn, n, r) for n, r in (("rev", "reviewer"), ("eve", "reviewer"))}
        people["ann"] = accounts.add_account(conn, "ann", "annotator")
        root = accounts.add_account(conn, "root", "admin")
    finally:
        conn.close()

    def post(person, url, body):
        return client.post(url, json=body, headers={"Authorization": f"Bearer {person.token}"})

    cat = post(root, "/api/categories", {"name": "thing"}).get_json()["id"]
    images = client.get("/api/images", headers={"Authorization": f"Bearer {root.token}"}).get_json()
    a = next(i for i in images if i["file_name"] == "a.jpg")
    made = post(
        root,
        f"/api/images/{a['id']}/annotations",
        {"category_id": cat, "segmentation": masks.encode(square_mask(48, 64, 1, 1, 9, 9))},
    )
    assert made.status_code == 201, made.get_json()
    url = f"/api/annotations/{made.get_json()['id']}/rating"
    assert post(people["ann"], url, {"rating": 5}).status_code == 403
    assert post(people["rev"], url, {"rating": 4}).get_json()["rater"] == "rev"
    assert post(people["eve"], url, {"rating": 9}).status_code == 200
    done = post(people["rev"], url, {"rating": 8}).get_json()  # rev changes their mind: replaced
    assert done["count"] == 2 and done["mean"] == 8.5
    assert {r["rater"]: r["rating"] for r in done["ratings"]} == {"rev": 8, "eve": 9}
    assert all(r["rated"] for r in done["ratings"])


def test_stats_per_stage_and_version(client):
    manual = _mask(client, "manual", model_version="v0002")
    auto = _mask(client, "auto", box=(30, 20, 60, 40))
    semi = _mask(client, "semi", model_version="base", box=(0, 0, 5, 5))
    for mask, rating in ((manual, 8), (auto, 9), (semi, 3)):
        assert client.post(f"/api/annotations/{mask}/rating", json={"rating": rating}).status_code == 200
    ratings = client.get("/api/stats").get_json()["ratings"]
    assert ratings["all"]["count"] == 3 and ratings["all"]["median"] == 8 and ratings["all"]["mean"] == 6.67
    assert ratings["stages"]["manual"]["histogram"] == [0] * 7 + [1, 0, 0]
    assert ratings["stages"]["auto"]["mean"] == 9 and ratings["stages"]["import"]["count"] == 0
    assert ratings["stages"]["import"]["mean"] is None
    assert set(ratings["versions"]) >= {"v0002", "base"} and ratings["versions"]["v0002"]["mean"] == 8


def test_coco_export_carries_ratings_and_import_reads_them_back(client, database):
    mask = _mask(client)
    other = _mask(client, box=(40, 30, 60, 44))
    client.post(f"/api/annotations/{mask}/rating", json={"rating": 7})
    coco = client.get("/api/export/coco").get_json()
    by_id = {a["id"]: a for a in coco["annotations"]}
    assert by_id[mask]["ratings"][0]["rating"] == 7 and by_id[mask]["ratings"][0]["rater"] is None
    assert "ratings" not in by_id[other]
    by_id[mask]["ratings"].append({"rating": 2, "rater": "someone", "rated": "2026-01-01T00:00:00Z"})
    for ann_id in (mask, other):
        assert client.delete(f"/api/annotations/{ann_id}").status_code == 204
    conn = open_database(database)
    try:
        report = import_coco(conn, coco)
        assert report.annotations == 2 and report.ratings == 2
        again = export_coco(conn)
    finally:
        conn.close()
    rated = [a for a in again["annotations"] if "ratings" in a]
    assert len(rated) == 1
    assert {r["rater"]: r["rating"] for r in rated[0]["ratings"]} == {None: 7, "someone": 2}
    assert any(r["rated"] == "2026-01-01T00:00:00Z" for r in rated[0]["ratings"])


@pytest.mark.parametrize(
    "bad",
    [
        5,
        [{"rating": 0}],
        [{"rating": "8"}],
        [{"rating": 7.5}],
        [{"rating": 3, "rater": "x"}, {"rating": 4, "rater": "x"}],
    ],
)
def test_import_refuses_bad_ratings(client, database, bad):
    _mask(client)
    coco = client.get("/api/export/coco").get_json()
    coco["annotations"][0]["ratings"] = bad
    client.delete(f"/api/annotations/{coco['annotations'][0]['id']}")
    conn = open_database(database)
    try:
        with pytest.raises(UserError, match="ratings"):
            import_coco(conn, coco)
    finally:
        conn.close()


def test_cli_stats_reports_ratings(client, data_dir, tmp_path, database):
    if not database.endswith(".db"):
        pytest.skip("the command line's store is the SQLite file here")
    mask = _mask(client)
    client.post(f"/api/annotations/{mask}/rating", json={"rating": 6})
    args = ["stats", "--data", str(data_dir), "--workdir", str(tmp_path / "work")]
    done = cli.run(*args, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ratings"]["stages"]["manual"]["mean"] == 6
    table = cli.run(*args)
    assert "mask ratings" in table.stdout and "stage manual" in table.stdout
