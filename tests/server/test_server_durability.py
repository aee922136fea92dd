"""``maskloop serve`` as a real process: an annotation answered 2xx survives SIGKILL (both stores)."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest
from support.data import make_data_dir
from support.live_server import LiveServer

from maskloop import masks
from maskloop.server.store.db import connect

pytestmark = pytest.mark.slow
BACKENDS = ("sqlite", "postgresql")


def start_server(data_dir, workdir, onnx_dir, *extra: str) -> LiveServer:
    """``maskloop serve --device cpu [EXTRA...]`` on one torch thread, listening."""
    return LiveServer(
        data_dir,
        workdir,
        args=["--device", "cpu", *extra],
        env={"MASKLOOP_ONNX_DIR": str(onnx_dir), "MASKLOOP_TORCH_THREADS": "1"},
        timeout=180,
    )


def request(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


def test_annotation_survives_sigkill(tmp_path, onnx_dir, database):
    data = make_data_dir(tmp_path / "data", bad=True)
    workdir = tmp_path / "work"
    server = start_server(data, workdir, onnx_dir, "--no-precompute", "--db", database)
    base = server.url
    try:
        images = {img["file_name"]: img for img in request("GET", f"{base}/api/images")[1]}
        image = images["a.jpg"]
        status, cat = request("POST", f"{base}/api/categories", {"name": "durable"})
        assert status == 201
        mask = np.zeros((image["height"], image["width"]), np.uint8)
        mask[5:20, 7:30] = 1
        status, created = request(
            "POST",
            f"{base}/api/images/{image['id']}/annotations",
            {"category_id": cat["id"], "segmentation": masks.encode(mask), "clicks": 2, "seconds": 1.5},
        )
        assert status == 201
        server.kill()  # right after the answer: no shutdown, no checkpoint
    finally:
        server.kill()
    conn = connect(database)
    row = conn.execute(
        "SELECT image_id, category_id, rle_counts, area, clicks FROM annotation WHERE id=?", (created["id"],)
    ).fetchone()
    conn.close()
    assert tuple(row) == (image["id"], cat["id"], masks.encode(mask)["counts"], int(mask.sum()), 2)
