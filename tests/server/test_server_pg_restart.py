"""PostgreSQL restarts under a running server: pooled connections (psycopg_pool), 503 with
Retry-After while the database is down, recovery by itself within 5 s once it is back, and no
acknowledged write lost. Uses its own throwaway cluster (``TempCluster``), halted as a crash would."""

from __future__ import annotations

import os
import time

import pytest
from support.data import make_data_dir, square_mask

from maskloop import masks

RECOVERY_LIMIT_S = 5.0


@pytest.fixture
def cluster():
    from support.pg_cluster import TempCluster, find_bin_dir

    if find_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: run scripts/setup --test")
        pytest.skip("PostgreSQL is not installed")
    c = TempCluster().start()
    try:
        yield c
    finally:
        c.stop()


def test_a_postgres_restart_is_503_then_recovers_losing_nothing(tmp_path, cluster):
    from maskloop.server.http.app import create_app
    from maskloop.server.http.db import POOL_KEY

    url = cluster.create_database("restart_test")
    data = make_data_dir(tmp_path / "data", bad=False)
    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data),
            "WORKDIR": str(tmp_path / "work"),
            "DATABASE": url,
            "PRECOMPUTE": False,
            "DEVICE": "cpu",
            "PG_POOL_SIZE": 3,
        }
    )
    client = app.test_client()
    image = next(im for im in client.get("/api/images").get_json() if im["file_name"] == "a.jpg")
    cat = client.post("/api/categories", json={"name": "cat"}).get_json()

    def post(i: int):
        body = {"category_id": cat["id"], "segmentation": masks.encode(square_mask(48, 64, i % 40, 1, i % 40 + 9, 9))}
        return client.post(f"/api/images/{image['id']}/annotations", json=body)

    acknowledged = []
    for i in range(20):
        r = post(i)
        assert r.status_code == 201, r.get_json()
        acknowledged.append(r.get_json()["id"])
    pool = app.extensions[POOL_KEY]
    stats = pool.stats()
    assert stats["requests_num"] >= 20 and stats["connections_num"] <= 3  # borrowed, not opened per request

    cluster.halt()
    for path in ("/api/images", f"/api/images/{image['id']}/annotations"):
        r = client.get(path)
        assert r.status_code == 503, (path, r.status_code, r.get_data(as_text=True)[:200])
        assert r.headers["Retry-After"] == "2" and "not reachable" in r.get_json()["error"]
    r = post(99)
    assert r.status_code == 503, r.get_data(as_text=True)[:200]

    cluster.resume()
    back = time.monotonic()
    while True:
        r = post(100)
        if r.status_code == 201:
            acknowledged.append(r.get_json()["id"])
            break
        assert r.status_code == 503, r.get_data(as_text=True)[:200]
        assert time.monotonic() - back < RECOVERY_LIMIT_S + 5, "the server did not recover"
    recovered = time.monotonic() - back
    print(f"recovered {recovered:.2f} s after the database came back")
    assert recovered <= RECOVERY_LIMIT_S, f"recovered {recovered:.1f} s after the database came back"
    stored = [a["id"] for a in client.get(f"/api/images/{image['id']}/annotations").get_json()]
    assert sorted(stored) == sorted(acknowledged)
