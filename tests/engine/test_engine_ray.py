"""``auto --ray`` and ``embed --ray`` on a local Ray the test starts: the single-process results, resumable, bad files skipped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from engine_fixtures import activate_noisy_version

from maskloop.paths import SAMPLE_IMAGES

ray = pytest.importorskip(
    "ray", reason="the Ray tests need `pip install 'maskloop[ray]'` (scripts/setup --test installs it)"
)

GRID = ["--points-per-side", "4"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _folder(root, name):
    folder = root / name
    folder.mkdir()
    shutil.copy(SAMPLE_IMAGES / "chelsea.jpg", folder / "chelsea.jpg")
    (folder / "broken.jpg").write_bytes((SAMPLE_IMAGES / "coffee.jpg").read_bytes()[:3000])  # truncated JPEG
    return folder


def _annotations(folder) -> list[tuple[int, int, str, str]]:
    """(id, image_id, RLE counts, model_version) of the folder's automatic masks, from its SQLite store."""
    conn = sqlite3.connect(folder / ".maskloop" / "maskloop.db")
    try:
        rows = conn.execute(
            "SELECT id, image_id, rle_counts, model_version FROM annotation WHERE stage = 'auto' ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [tuple(row) for row in rows]


def _run(capsys, *argv):
    from maskloop.cli import main

    status = main(list(argv))
    out, err = capsys.readouterr()
    assert status == 0, err
    return err


@pytest.mark.slow
def test_auto_on_ray_equals_single_process_and_resumes(local_ray, tmp_path, capsys):
    on_ray, alone = _folder(tmp_path, "on_ray"), _folder(tmp_path, "alone")
    err = _run(capsys, "auto", "--data", str(on_ray), "--out", str(tmp_path / "ray.json"), *GRID, "--ray")
    assert "skipped broken.jpg: unreadable image" in err and "1 images to annotate (0 done before)" in err
    _run(capsys, "auto", "--data", str(alone), "--out", str(tmp_path / "alone.json"), *GRID)
    distributed = json.loads((tmp_path / "ray.json").read_text())
    single = json.loads((tmp_path / "alone.json").read_text())
    assert len(distributed["annotations"]) >= 2
    assert [a["id"] for a in distributed["annotations"]] == list(range(1, len(distributed["annotations"]) + 1))
    strip = lambda coco: [
        (a["segmentation"], a["bbox"], a["area"], round(a["predicted_iou"], 5)) for a in coco["annotations"]
    ]  # noqa: E731
    assert strip(distributed) == strip(single)
    assert ray.is_initialized(), "a Ray session the caller opened stays open"

    again = _run(capsys, "auto", "--data", str(on_ray), "--out", str(tmp_path / "ray.json"), *GRID, "--ray")
    assert "0 images to annotate (1 done before)" in again
    assert json.loads((tmp_path / "ray.json").read_text())["annotations"] == distributed["annotations"]


@pytest.mark.slow
def test_embed_on_ray_fills_the_servers_cache(local_ray, tmp_path, capsys):
    from maskloop.server.jobs.embeddings import EmbeddingCache

    folder = _folder(tmp_path, "photos")
    err = _run(capsys, "embed", "--data", str(folder), "--ray")
    assert "1 images to embed" in err and "skipped broken.jpg" in err
    files = list((folder / ".maskloop" / "embeddings").rglob("*.npy"))
    assert len(files) == 1
    assert EmbeddingCache._sound(files[0].read_bytes())
    assert "0 images to embed" in _run(capsys, "embed", "--data", str(folder), "--ray")


def test_embedding_worker_reports_a_bad_file_and_embeds_the_rest(engine_model, tmp_path):
    """The Ray actor's own code, called directly: one unreadable file does not fail the batch."""
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb
    from maskloop.server.jobs.distributed import EmbedImages, ModelSpec
    from maskloop.server.jobs.proposals import embedding_from_npy

    folder = _folder(tmp_path, "photos")
    spec = ModelSpec("vit_t", None, "cpu", "fp32", "vit_t-test")
    worker = EmbedImages(spec, None, 2)
    out = worker(
        {
            "path": np.array([str(folder / "broken.jpg"), str(folder / "chelsea.jpg")], dtype=object),
            "sha256": np.array(["a", "b"], dtype=object),
        }
    )
    assert out["error"][0].startswith("unreadable image") and out["embedding"][0] == b""
    assert out["error"][1] == ""
    expected = ImageEmbedder(engine_model).embed([load_image_rgb(folder / "chelsea.jpg")]).astype(np.float16)
    assert np.array_equal(embedding_from_npy(out["embedding"][1]), expected.astype(np.float32))


@pytest.mark.slow
def test_auto_on_ray_generates_with_the_active_model_version(local_ray, engine_model, tmp_path, capsys):
    """A fine-tuned decoder made active in the project is the one the Ray workers generate with."""
    folders = {}
    for name in ("on_ray", "alone"):
        folders[name] = _folder(tmp_path, name)
        activate_noisy_version(engine_model, folders[name] / ".maskloop" / "models")
    _run(capsys, "auto", "--data", str(folders["on_ray"]), "--out", str(tmp_path / "ray.json"), *GRID, "--ray")
    _run(capsys, "auto", "--data", str(folders["alone"]), "--out", str(tmp_path / "alone.json"), *GRID)
    distributed, single = _annotations(folders["on_ray"]), _annotations(folders["alone"])
    assert distributed and {a[3] for a in distributed} == {"v0001"}
    assert [a[2] for a in distributed] == [a[2] for a in single]
    from maskloop.engine.automatic import AutomaticMaskGenerator, GeneratorSettings
    from maskloop.exporter.embedding import ImageEmbedder, load_image_rgb

    image = load_image_rgb(folders["alone"] / "chelsea.jpg")
    embedder = ImageEmbedder(engine_model)
    embedding = embedder.embed([image]).astype(np.float16).astype(np.float32)
    with_base = AutomaticMaskGenerator(engine_model, embedder, GeneratorSettings(points_per_side=4)).generate(
        image, embedding
    )
    assert sorted(m["segmentation"]["counts"] for m in with_base) != sorted(a[2] for a in distributed), (
        "the version's decoder must give other masks than the base decoder"
    )


@pytest.mark.slow
def test_auto_on_ray_killed_and_restarted_resumes_without_duplicates(local_ray, tmp_path, capsys):
    """SIGKILL ``auto --ray`` once some images are stored, run it again: every image's masks exactly once, ids 1..N.

    The killed run is a real process that starts its own local Ray; the run after it is this
    process's, on the module's Ray (a second local Ray start would test nothing more)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ["chelsea.jpg", "coffee.jpg", "camera.jpg", "astronaut.jpg", "rocket.jpg"]
    for name in names:
        shutil.copy(SAMPLE_IMAGES / name, folder / name)
    out = tmp_path / "auto.json"
    argv = [sys.executable, "-m", "maskloop.cli", "auto", "--data", str(folder), "--out", str(out), *GRID, "--ray"]
    done = folder / ".maskloop" / "auto-done.json"
    # Its own session, so that the local Ray it starts is killed with it (the process group).
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            if done.is_file() and 1 <= len(json.loads(done.read_text() or "[]")) < len(names):
                break
            time.sleep(0.1)
        assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read().decode()}"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finished_before = len(json.loads(done.read_text()))
    assert 1 <= finished_before < len(names) and not out.exists()

    again = _run(capsys, *argv[3:])
    assert f"{len(names) - finished_before} images to annotate ({finished_before} done before)" in again
    annotations = json.loads(out.read_text())["annotations"]
    assert [a["id"] for a in annotations] == list(range(1, len(annotations) + 1))
    assert {a["image_id"] for a in annotations} == set(range(1, len(names) + 1))
    masks = [(a["image_id"], a["segmentation"]["counts"]) for a in annotations]
    assert len(set(masks)) == len(masks), "an image's masks were stored twice"
    stored = _annotations(folder)
    assert [a[0] for a in stored] == [a["id"] for a in annotations]
