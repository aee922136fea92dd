"""One process-wide lock for building models and exporting them to ONNX.

``torch.onnx.export`` keeps process-global state (``GLOBALS.in_onnx_export``): a second export
started while one runs fails with "GLOBALS.in_onnx_export must be False", and a model built or
traced beside an export can see the exporter's state. A server does several of these in threads
(the base decoder's export at start, the image encoder's export when the embedding worker first
loads the model, the grid decoder for proposals, a training run's decoder export), so every one
of them takes ``MODEL_LOCK``. It is re-entrant: an export may load a model, and loading the
embedder exports the encoder.
"""

from __future__ import annotations

import threading
from typing import Any

#: Held while a model is loaded or anything is exported to ONNX in this process.
MODEL_LOCK = threading.RLock()


def onnx_export(*args: Any, **kwargs: Any) -> Any:
    """``torch.onnx.export`` under ``MODEL_LOCK``: never two exports, nor a model load, at once."""
    import torch

    with MODEL_LOCK:
        return torch.onnx.export(*args, **kwargs)
