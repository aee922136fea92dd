"""Fixtures of the server tests: a temp data folder of real and broken files, an app on it.

Everything runs on a real store: a SQLite file, or a real PostgreSQL server in modules that set
``BACKENDS`` (see tests/conftest.py); tests marked ``slow`` use the real default model on the
CPU (embeddings, decoder export), sharing one exported decoder per session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.data import make_data_dir

from maskloop.paths import SAMPLE_IMAGES


@pytest.fixture(scope="session")
def onnx_dir(web_cache) -> Path:
    """The base decoder's export root, shared with the page tests (``ONNX_DIR``; the export is keyed
    by the checkpoint's sha256 and made again when stale): one export per session at most."""
    return web_cache / "onnx"


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return make_data_dir(tmp_path / "data")


@pytest.fixture
def app(data_dir, tmp_path, onnx_dir, database):
    """An app on a temp folder and a real store (``database``); no background worker."""
    from maskloop.server.http.app import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data_dir),
            "WORKDIR": str(tmp_path / "work"),
            "DATABASE": database,
            "ONNX_DIR": str(onnx_dir),
            "PRECOMPUTE": False,
            "DEVICE": "cpu",
            "TORCH_THREADS": 2,
        }
    )
    yield app
    app.extensions["maskloop"].embeddings.stop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    """A data folder with two real photos (a cat and a portrait)."""
    root = tmp_path / "photos"
    root.mkdir()
    for name in ("chelsea.jpg", "astronaut.jpg"):
        shutil.copy(SAMPLE_IMAGES / name, root / name)
    return root


@pytest.fixture
def photo_app(photo_dir, tmp_path, onnx_dir):
    """``photo_app(**config)``: an app on ``photo_dir`` (CPU, no background worker unless asked); stopped after the test."""
    from maskloop.server.http.app import create_app

    def make(**config):
        app = create_app(
            {
                "TESTING": True,
                "DATA_DIR": str(photo_dir),
                "WORKDIR": str(tmp_path / "work"),
                "ONNX_DIR": str(onnx_dir),
                "PRECOMPUTE": False,
                "DEVICE": "cpu",
                "TORCH_THREADS": 2,
                **config,
            }
        )
        made.append(app)
        return app

    made: list = []
    yield make
    for app in made:
        app.extensions["maskloop"].embeddings.stop()
