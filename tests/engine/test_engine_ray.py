"""``auto --ray`` and ``embed --ray`` on a local Ray the test starts: the single-process results, resumable, bad files skipped."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

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
    from maskloop.server.embeddings import EmbeddingCache

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
    from maskloop.server.distributed import EmbedImages, ModelSpec
    from maskloop.server.proposals import embedding_from_npy

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
