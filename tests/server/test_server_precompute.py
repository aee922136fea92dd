"""The embedding worker at a first start: loading the model is serialised with ONNX exports,
a failed load is tried again with a growing delay, and ``/api/health`` reports the worker's state.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from support.data import make_data_dir
from support.live_server import LiveServer

from maskloop.server.jobs.embeddings import EmbeddingService


class FlakyModel:
    """A model that fails to load ``failures`` times (as a load beside an ONNX export did), then embeds zeros."""

    model_id = "flaky-000000000000"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.loads = 0

    @property
    def batch_size(self) -> int:
        self.loads += 1
        if self.loads <= self.failures:
            raise AssertionError("GLOBALS.in_onnx_export must be False")
        return 1

    def embed(self, images: list) -> np.ndarray:
        return np.zeros((len(images), 256, 64, 64), np.float32)


def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _service(tmp_path: Path, model: FlakyModel, delays: tuple[float, ...]) -> EmbeddingService:
    data = make_data_dir(tmp_path / "data", bad=False)
    files = sorted(p for p in data.rglob("*") if p.is_file())
    service = EmbeddingService(model, tmp_path / "embeddings", retry_delays=delays)  # type: ignore[arg-type]
    service.sync((f"{i:064x}", path, i) for i, path in enumerate(files, start=1))
    return service


def test_a_failed_model_load_is_tried_again_and_every_image_is_embedded(tmp_path):
    model = FlakyModel(failures=2)
    service = _service(tmp_path, model, delays=(0.2, 0.4, 0.8))
    assert service.state()["state"] == "off"
    seen: list[str] = []
    service.start()
    try:
        _wait(lambda: seen.append(service.state()["state"]) or service.state()["state"] == "idle")
        state = service.state()
        assert state["done"] == state["total"] == 4 and state["error"] is None and state["attempts"] == 3
        assert "retrying" in seen and model.loads == 3
    finally:
        service.stop()
    assert service.state()["state"] == "off"


def test_a_model_that_never_loads_is_reported_and_requests_still_get_an_error(tmp_path):
    model = FlakyModel(failures=100)
    service = _service(tmp_path, model, delays=(0.05, 0.05))
    service.start()
    try:
        _wait(lambda: service.state()["state"] == "failed")
        state = service.state()
        assert state["attempts"] == 3 and "in_onnx_export" in (state["error"] or "") and state["done"] == 0
    finally:
        service.stop()


def test_health_reports_the_precompute_state(photo_app):
    client = photo_app().test_client()  # PRECOMPUTE off in the tests' apps
    health = client.get("/api/health").get_json()
    assert health["ok"] is True and health["precompute"]["state"] == "off"
    assert set(health["precompute"]) == {"state", "done", "total", "error", "attempts"}


def test_model_loading_and_onnx_exports_never_overlap():
    """Every export goes through ``model_lock.onnx_export``; the model service loads under the same lock."""
    from maskloop.exporter import model_lock
    from maskloop.server.jobs import model

    assert model._SHARED_LOCK is model_lock.MODEL_LOCK
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with model_lock.MODEL_LOCK:
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(5)
    got = model_lock.MODEL_LOCK.acquire(timeout=0.2)
    release.set()
    holder.join()
    assert not got  # an export (or a load) waits for the one in progress
    root = Path(__file__).resolve().parents[2]
    callers = [
        p.relative_to(root)
        for folder in ("exporter", "engine", "server")
        for p in (root / folder).rglob("*.py")
        if "torch.onnx.export(" in p.read_text() and p.name != "model_lock.py"
    ]
    assert callers == [], f"torch.onnx.export called outside model_lock.onnx_export: {callers}"


@pytest.mark.slow
def test_fresh_folders_start_with_every_image_embedded(tmp_path):
    """``maskloop serve`` on a new folder (the decoder exported at start, beside the precompute
    worker loading the model), three times: every image is embedded, nothing is retried for ever."""
    for attempt in range(3):
        root = tmp_path / f"fresh{attempt}"
        data = make_data_dir(root / "data", bad=False)
        server = LiveServer(data, root / "work", args=["--device", "cpu"])
        try:
            server.wait_for_embeddings(300)
            with urllib.request.urlopen(server.url + "/api/health", timeout=30) as r:
                health = json.loads(r.read())
            assert health["precompute"]["state"] == "idle", health
            assert health["precompute"]["done"] == health["precompute"]["total"] == 4
        finally:
            server.stop()
        log = (root / "work" / "serve.log").read_text()
        assert "precompute stopped" not in log and "in_onnx_export" not in log, log[-2000:]
        shutil.rmtree(root / "work", ignore_errors=True)
