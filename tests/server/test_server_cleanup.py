"""The project's clean-up defaults: GET / PUT /api/settings/cleanup, kept in the work folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_cleanup_defaults_change_and_persist(client, app):
    assert client.get("/api/settings/cleanup").get_json() == {
        "min_hole_px": 100,
        "min_island_px": 100,
        "on_accept": False,
    }
    r = client.put("/api/settings/cleanup", json={"min_hole_px": 400, "on_accept": True})
    assert r.status_code == 200
    want = {"min_hole_px": 400, "min_island_px": 100, "on_accept": True}
    assert r.get_json() == want and client.get("/api/settings/cleanup").get_json() == want
    assert json.loads((Path(app.config["WORKDIR"]) / "cleanup.json").read_text()) == want


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"min_hole_px": -1}, "min_hole_px must be a whole number"),
        ({"min_island_px": 2.5}, "min_island_px must be a whole number"),
        ({"min_island_px": True}, "min_island_px must be a whole number"),
        ({"on_accept": "yes"}, "on_accept must be true or false"),
        ({"holes": 3}, "unknown clean-up setting 'holes'"),
    ],
)
def test_bad_cleanup_settings_are_refused_and_change_nothing(client, body, fragment):
    r = client.put("/api/settings/cleanup", json=body)
    assert r.status_code == 400 and fragment in r.get_json()["error"]
    assert client.get("/api/settings/cleanup").get_json()["min_hole_px"] == 100
