"""``auto --ray`` and ``embed --ray`` on a local Ray the test starts: the single-process results, resumable, bad files skipped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from engine_fixtures import activate_noisy_version, check_each_found_once

from maskloop.paths import SAMPLE_IMAGES

ray = pytest.importorskip(
    "ray", reason="the Ray tests need `pip install 'maskloop[ray]'` (scripts/setup --test installs it)"
)

GRID = ["--points-per-side", "4"]
TILE_GRID = ["--points-per-side", "16"]


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


@pytest.mark.slow
def test_auto_on_ray_runs_a_large_image_tile_by_tile(local_ray, tmp_path, capsys):
    """A 1600x1000 picture tiled at a threshold of 1200 (two tiles, cut at x = 576 and 1024): ``--ray``
    finds the objects across the cut edges once each, and stores what the single-process run does."""
    from PIL import Image

    from maskloop.engine.small_objects import place_scene

    hw = (1000, 1600)
    image, objects = place_scene(
        5, hw[1], hw[0], [((1024, 400), 110, True), ((576, 750), 110, True), ((300, 300), 100, False)]
    )
    folders = {}
    for name in ("on_ray", "alone"):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        Image.fromarray(image).save(folders[name] / "field.png")
    os.environ["MASKLOOP_TILE_THRESHOLD"] = "1200"
    try:
        _run(capsys, "auto", "--data", str(folders["on_ray"]), "--out", str(tmp_path / "ray.json"), *TILE_GRID, "--ray")
        _run(capsys, "auto", "--data", str(folders["alone"]), "--out", str(tmp_path / "alone.json"), *TILE_GRID)
    finally:
        del os.environ["MASKLOOP_TILE_THRESHOLD"]
    distributed = json.loads((tmp_path / "ray.json").read_text())
    check_each_found_once(distributed, objects, hw)
    assert _annotations(folders["on_ray"]) == _annotations(folders["alone"])
    # The workers leave the tiles' embeddings in the folder's cache (it is on this machine): a rerun reads them.
    cached = sorted(p.name for p in (folders["on_ray"] / ".maskloop" / "embeddings").rglob("*@*.npy"))
    assert len(cached) == 2, f"tile embeddings the Ray workers cached: {cached}"


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


def test_embedding_worker_of_auto_leaves_tiled_images_to_the_generator(tmp_path):
    """Before ``GenerateMasks`` the worker embeds small images only: a large one (embedded tile by
    tile later) is not read at all, so it is never decoded whole on a worker."""
    from maskloop.server.jobs.distributed import EmbedImages, ModelSpec

    folder = _folder(tmp_path, "photos")
    worker = EmbedImages(ModelSpec("vit_t", None, "cpu", "fp32", "vit_t-test"), None, 2, skip_tiled=True)
    out = worker(
        {
            "path": np.array([str(folder / "absent-large.jpg"), str(folder / "chelsea.jpg")], dtype=object),
            "sha256": np.array(["a", "b"], dtype=object),
            "width": np.array([9000, 451]),
            "height": np.array([6000, 300]),
        }
    )
    assert list(out["error"]) == ["", ""], "the large image's file was read"
    assert out["embedding"][0] == b"" and len(out["embedding"][1]) > 2_000_000


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


@pytest.fixture
def own_ray_dir():
    """A short RAY_TMPDIR for the local Rays this test's subprocesses start; every process that
    names it (gcs_server, raylet, workers) is SIGKILLed afterwards, and nothing else."""
    import psutil

    folder = tempfile.mkdtemp(prefix="rk", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    yield folder
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if process.pid != os.getpid() and (
                any(folder in arg for arg in process.info["cmdline"] or [])
                or process.environ().get("RAY_TMPDIR") == folder
            ):
                process.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    shutil.rmtree(folder, ignore_errors=True)


def _images_stored(folder) -> int:
    """How many images have automatic masks in the folder's store (0 before it exists)."""
    database = folder / ".maskloop" / "maskloop.db"
    if not database.is_file():
        return 0
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        try:
            return int(
                conn.execute("SELECT count(DISTINCT image_id) FROM annotation WHERE stage = 'auto'").fetchone()[0]
            )
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the schema is being created
        return 0


def _masks_per_image(coco) -> dict[str, list[tuple[str, str]]]:
    """file name -> sorted (RLE counts, category name) of its masks: a COCO file without ids or times."""
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    categories = {category["id"]: category["name"] for category in coco["categories"]}
    out: dict[str, list[tuple[str, str]]] = {name: [] for name in files.values()}
    for a in coco["annotations"]:
        out[files[a["image_id"]]].append((a["segmentation"]["counts"], categories[a["category_id"]]))
    return {name: sorted(masks) for name, masks in out.items()}


@pytest.mark.slow
def test_auto_on_ray_killed_and_restarted_resumes_without_duplicates(own_ray_dir, tmp_path, capsys):
    """SIGKILL ``auto --ray`` (its process group) once some but not all images are in the store, run
    it again: the COCO file equals an uninterrupted run's on a copy of the folder, no mask twice.

    Both ``--ray`` runs are real processes, each starting its own local Ray (as a user's restart
    would); the uninterrupted run is the single-process one, which equals ``--ray``'s (above)."""
    folder, twin = tmp_path / "photos", tmp_path / "twin"
    names = ["chelsea.jpg", "coffee.jpg", "camera.jpg", "astronaut.jpg"]
    for target in (folder, twin):
        target.mkdir()
        for name in names:
            shutil.copy(SAMPLE_IMAGES / name, target / name)
    out = tmp_path / "auto.json"
    argv = [sys.executable, "-m", "maskloop.cli", "auto", "--data", str(folder), "--out", str(out), *GRID, "--ray"]
    env = {**os.environ, "RAY_TMPDIR": own_ray_dir}
    # Its own session: the SIGKILL goes to the whole process group, as a terminal's would.
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            if 1 <= _images_stored(folder) < len(names):
                break
            time.sleep(0.05)
        assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read().decode()}"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    stored_before = _images_stored(folder)
    assert 1 <= stored_before < len(names) and not out.exists()
    # The kill can land between an image's commit and the rewrite of auto-done.json (a power cut can
    # also lose that rewrite, it is not fsynced): without the file, the store alone must tell what is done.
    (folder / ".maskloop" / "auto-done.json").unlink(missing_ok=True)

    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{len(names) - stored_before} images to annotate ({stored_before} done before)" in again.stderr
    _run(capsys, "auto", "--data", str(twin), "--out", str(tmp_path / "uninterrupted.json"), *GRID)

    resumed = json.loads(out.read_text())
    uninterrupted = json.loads((tmp_path / "uninterrupted.json").read_text())
    assert [a["id"] for a in resumed["annotations"]] == list(range(1, len(resumed["annotations"]) + 1))
    per_image = _masks_per_image(resumed)
    assert set(per_image) == set(names) and all(per_image.values())
    for name, masks in per_image.items():
        assert len({counts for counts, _ in masks}) == len(masks), f"a mask of {name} was stored twice"
    assert per_image == _masks_per_image(uninterrupted)
    assert [a[0] for a in _annotations(folder)] == [a["id"] for a in resumed["annotations"]]
