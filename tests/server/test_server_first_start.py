"""A new folder's first start (issue 27): the decoder comes from the shared per-model cache,
``serve`` says what it does at once, and files that are not images get one quiet line."""

from __future__ import annotations

import io
import shutil
import threading
import time
from pathlib import Path

import pytest
from support.cli import run

from maskloop.cli.progress import slow_step
from maskloop.filelock import file_lock
from maskloop.paths import SAMPLE_IMAGES
from maskloop.server.jobs.catalog import is_document
from maskloop.server.settings import DEFAULTS, resolve_paths


class _NoServer:
    """What ``waitress.create_server`` returns in these tests: a port, and a ``run`` that returns."""

    effective_port = 8123

    def run(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_model_only_caches_default_to_the_user_cache_and_project_files_to_the_work_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKLOOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MASKLOOP_ONNX_DIR", raising=False)
    config = {**DEFAULTS, "DATA_DIR": str(SAMPLE_IMAGES), "WORKDIR": str(tmp_path / "work")}
    resolve_paths(config)
    assert Path(config["ONNX_DIR"]) == tmp_path / "cache" / "onnx"
    assert Path(config["GZIP_DIR"]) == tmp_path / "cache" / "gzip"
    for key in ("MODELS_DIR", "EMBEDDINGS_DIR", "DISPLAY_DIR"):
        assert Path(config[key]).parent == tmp_path / "work"
    monkeypatch.setenv("MASKLOOP_ONNX_DIR", str(tmp_path / "elsewhere"))  # still overridable
    config = {**DEFAULTS, "DATA_DIR": str(SAMPLE_IMAGES), "WORKDIR": str(tmp_path / "work")}
    resolve_paths(config)
    assert Path(config["ONNX_DIR"]) == tmp_path / "elsewhere"


def _fake_export(calls: list[int]):
    """An ``export_decoder`` that takes a moment and writes a tiny but well-formed export."""
    from maskloop.digest import sha256_file
    from maskloop.exporter import onnx_export

    def export(model, out_dir, *, checkpoint_sha256, variant, embedding_dtype, **kw):
        calls.append(1)
        time.sleep(0.5)
        (out_dir / "decoder.onnx").write_bytes(b"graph")
        manifest = {
            "manifest_version": onnx_export.MANIFEST_VERSION,
            "checkpoint_sha256": checkpoint_sha256,
            "variant": variant,
            "embedding": {"dtype": embedding_dtype},
            "created": time.time(),
            "decoders": {"fp32": {"file": "decoder.onnx", "sha256": sha256_file(out_dir / "decoder.onnx")}},
        }
        (out_dir / "manifest.json").write_text(onnx_export.json.dumps(manifest))
        return manifest

    return export


def test_two_servers_starting_at_once_export_a_model_once_and_never_see_half_an_export(tmp_path, monkeypatch):
    from maskloop.exporter import onnx_export

    calls: list[int] = []
    monkeypatch.setattr(onnx_export, "export_decoder", _fake_export(calls))
    out = tmp_path / "onnx" / "vit_t-0123456789ab"
    results: list[dict] = []

    def start() -> None:
        results.append(
            onnx_export.ensure_decoder("vit_t", None, out, model=object(), checkpoint_sha="ab", prefix=False)
        )

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    assert not out.exists()  # written beside it, renamed into place when complete
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len({r["created"] for r in results}) == 1
    assert sorted(p.name for p in out.parent.iterdir()) == [".vit_t-0123456789ab.lock", out.name]
    (out / "decoder.onnx").write_bytes(b"damaged")  # a stale export is replaced, leftovers removed
    (out.parent / f".{out.name}.tmp-999999").mkdir()
    again = onnx_export.ensure_decoder("vit_t", None, out, model=object(), checkpoint_sha="ab", prefix=False)
    assert len(calls) == 2 and again["created"] != results[0]["created"]
    assert sorted(p.name for p in out.parent.iterdir()) == [".vit_t-0123456789ab.lock", out.name]


def test_a_held_lock_makes_the_next_one_wait_and_say_so(tmp_path):
    said: list[str] = []
    order: list[str] = []
    held = threading.Event()

    def holder() -> None:
        with file_lock(tmp_path / "x.lock"):
            held.set()
            time.sleep(0.3)
            order.append("first")

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()
    with file_lock(tmp_path / "x.lock", on_wait=lambda: said.append("waiting")):
        order.append("second")
    thread.join()
    assert said == ["waiting"] and order == ["first", "second"]


def test_a_slow_step_says_so_and_a_quick_one_says_nothing():
    out = io.StringIO()
    with slow_step("quick", quiet_for=0.5, stream=out):
        pass
    assert out.getvalue() == ""
    with slow_step("exporting", quiet_for=0.05, every=0.1, stream=out):
        time.sleep(0.3)
    lines = out.getvalue().splitlines()
    assert lines[0] == "maskloop: exporting…" and lines[1].startswith("maskloop: exporting… (")
    assert lines[-1].startswith("maskloop: exporting: done in ")


def test_documents_are_not_counted_as_files_that_are_not_images():
    assert all(map(is_document, ["LICENSES.md", "README", "sub/readme.txt", "LICENSE-photos", "COPYING"]))
    assert not any(map(is_document, ["labels.txt", "notes.csv", "cat.json"]))
    skipped = [p.name for p in SAMPLE_IMAGES.iterdir() if p.suffix.lower() not in (".jpg", ".png")]
    assert skipped and all(map(is_document, skipped))


@pytest.mark.slow
def test_serve_speaks_at_once_and_counts_other_files_quietly(tmp_path, monkeypatch, onnx_dir):
    import waitress

    data = tmp_path / "photos"
    shutil.copytree(SAMPLE_IMAGES, data)
    monkeypatch.setattr(waitress, "create_server", lambda app, **kw: _NoServer())
    env = {"MASKLOOP_ONNX_DIR": str(onnx_dir), "MASKLOOP_TORCH_THREADS": "1"}
    result = run("serve", "--data", str(data), "--no-precompute", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"maskloop: opening {data} (9 images)…"
    assert lines[-1] == "maskloop: ready at http://127.0.0.1:8123/"
    assert any(line.startswith(f"maskloop: decoder ready: {onnx_dir.resolve()}/vit_t-") for line in lines)
    assert result.stderr == "" and "not listed" not in result.stdout  # LICENSES.md is the folder's own

    (data / "labels.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (data / "notes.csv").write_text("a,b\n")
    result = run("serve", "--data", str(data), "--no-precompute", env=env)
    assert result.returncode == 0 and "warning" not in result.stdout + result.stderr
    assert "maskloop: 2 files not listed (not images by their name): labels.txt, notes.csv" in result.stdout
    assert not (data / ".maskloop" / "onnx").exists()  # the folder keeps no copy of the base decoder
