"""A full disk: 507 with a one-line JSON error, no partial file, the server keeps serving and
recovers once there is room again. The work folder lives on a small tmpfs the test mounts
(root only: skipped elsewhere)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.data import square_mask

from maskloop import masks

pytestmark = pytest.mark.slow

DISK_MB = 6


@pytest.fixture
def small_disk(tmp_path):
    """A DISK_MB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves about ``leave`` bytes free on ``disk``."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with filler.open("ab") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_is_507_loses_nothing_and_recovers(small_disk, photo_app, photo_dir, capsys):
    app = photo_app(WORKDIR=str(small_disk / "work"), EMBEDDINGS_DIR=str(small_disk / "embeddings"))
    client = app.test_client()
    ids = {im["file_name"]: im["id"] for im in client.get("/api/images").get_json()}
    cat = client.post("/api/categories", json={"name": "cat"}).get_json()
    chelsea = ids["chelsea.jpg"]  # 451 x 300
    body = {"category_id": cat["id"], "segmentation": masks.encode(square_mask(300, 451, 10, 10, 60, 60)), "clicks": 1}
    first = client.post(f"/api/images/{chelsea}/annotations", json=body)
    assert first.status_code == 201, first.get_json()

    filler = fill(small_disk, leave=64 * 1024)  # an embedding needs 2 MiB
    r = client.get(f"/api/images/{chelsea}/embedding")
    assert r.status_code == 507, r.get_data(as_text=True)[:300]
    error = r.get_json()["error"]
    assert "disk is full" in error and "\n" not in error
    leftovers = [p.name for p in (small_disk / "embeddings").rglob("*") if p.is_file()]
    assert leftovers == [], leftovers  # no partial embedding file

    # a write the store cannot make: 507, and what it acknowledged before is intact
    fill(small_disk, leave=96 * 1024)  # room to open the store, not to grow it much
    big = {**body, "segmentation": masks.encode(_noise_mask(300, 451))}  # ~200 KB of RLE
    r = client.post(f"/api/images/{chelsea}/annotations", json=big)
    assert r.status_code == 507, r.get_data(as_text=True)[:300]
    assert "disk is full" in r.get_json()["error"]
    listed = client.get(f"/api/images/{chelsea}/annotations").get_json()
    assert [a["id"] for a in listed] == [first.get_json()["id"]]
    assert client.get("/api/health").status_code == 200  # still serving

    fill(small_disk, leave=0)  # no room at all: still a 507, not a 500
    r = client.post(f"/api/images/{chelsea}/annotations", json=big)
    assert r.status_code == 507, r.get_data(as_text=True)[:300]

    # the CLI: one line, exit status 2, no half-written data set
    from maskloop.cli import main

    out = small_disk / "yolo"
    argv = ["export", "--format", "yolo-seg", "--data", str(photo_dir), "--workdir", str(small_disk / "work")]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "disk is full" in err and err.count("\n") == 1, err
    assert not out.exists() or not any(out.iterdir())

    filler.unlink()  # room again: the same requests now succeed
    assert client.get(f"/api/images/{chelsea}/embedding").status_code == 200
    r = client.post(f"/api/images/{chelsea}/annotations", json=body)
    assert r.status_code == 201, r.get_json()
    assert len(client.get(f"/api/images/{chelsea}/annotations").get_json()) == 2


def _noise_mask(h: int, w: int):
    import numpy as np

    return np.random.default_rng(0).random((h, w)) > 0.5  # an RLE of ~130k runs: many pages to write
