"""Content fingerprints: the sha256 that names checkpoints, exported files and images."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks (checkpoints are GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(modules: Mapping[str, Any]) -> str:
    """sha256 (hex) over ``{prefix: torch module}``'s weights: names, shapes and values (as float32).

    What names an exported graph in a cache: the same weights give the same file.
    """
    digest = hashlib.sha256()
    for prefix, module in modules.items():
        for name, tensor in module.state_dict().items():
            digest.update(f"{prefix}.{name}{tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()
