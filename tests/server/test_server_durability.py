"""``maskloop serve`` as a real process: an annotation answered 2xx survives SIGKILL (both stores)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from server_fixtures import make_data_dir

from maskloop import masks
from maskloop.server.db import connect

pytestmark = pytest.mark.slow
BACKENDS = ("sqlite", "postgresql")


def start_server(data_dir, workdir, onnx_dir, *extra: str) -> tuple[subprocess.Popen, str]:
    """Start ``maskloop serve --port 0`` and return (process, base URL) once it listens."""
    env = dict(os.environ, MASKLOOP_ONNX_DIR=str(onnx_dir), MASKLOOP_TORCH_THREADS="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "maskloop.cli",
            "serve",
            "--data",
            str(data_dir),
            "--workdir",
            str(workdir),
            "--port",
            "0",
            "--device",
            "cpu",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "serving at " in line:
            return proc, line.split("serving at ", 1)[1].strip().split("?")[0].rstrip("/")
    proc.kill()
    raise AssertionError(f"maskloop serve did not start (exit {proc.wait()})")


def request(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


def test_annotation_survives_sigkill(tmp_path, onnx_dir, database):
    data = make_data_dir(tmp_path / "data", bad=True)
    workdir = tmp_path / "work"
    proc, base = start_server(data, workdir, onnx_dir, "--no-precompute", "--db", database)
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
        os.kill(proc.pid, signal.SIGKILL)  # right after the answer: no shutdown, no checkpoint
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    conn = connect(database)
    row = conn.execute(
        "SELECT image_id, category_id, rle_counts, area, clicks FROM annotation WHERE id=?", (created["id"],)
    ).fetchone()
    conn.close()
    assert tuple(row) == (image["id"], cat["id"], masks.encode(mask)["counts"], int(mask.sum()), 2)
