"""Whether an exported decoder folder is current, without importing torch or onnx (a server's
start reads it before anything heavy is loaded).

An export (``exporter/onnx_export.py``'s ``ensure_decoder``) is current when its ``manifest.json``
has this ``MANIFEST_VERSION``, the checkpoint's sha256, the variant and embedding dtype asked for,
the prefix graphs' current ``PREFIX_FORMAT`` and ``PROMPT_OPTIMIZED`` level, and every file it
lists is present with its recorded sha256. The base decoder's export of a model is kept once per
user in ``cache_dir()/onnx/<model_type>-<checkpoint sha256[:12]>/`` (``maskloop.paths.onnx_cache_dir``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from maskloop.digest import sha256_file

MANIFEST_VERSION = 1
#: onnxruntime's optimisation level the prompt graph is saved at (the manifest's ``optimized``):
#: the page then creates its session without optimising it again, which in WASM is most of the
#: session's creation time on a cold page (bench/RESULTS.md, issue 12).
PROMPT_OPTIMIZED = "extended"
#: The layout of the prefix's outputs and the prompt graph's inputs (the manifest's ``format``):
#: bumped when they change, so that an export written before is made again (``ensure_decoder``).
#: 2: attention over image tokens on the token side, the positional encoding's shares from the prefix.
PREFIX_FORMAT = 2
#: The page's decoder: 256x256 logits only, a float16 embedding input (what the server sends).
BROWSER_VARIANT = "lowres"
BROWSER_EMBEDDING_DTYPE = "float16"


def prefix_current(manifest: dict[str, Any]) -> bool:
    """The manifest lists prefix graphs written as this version writes them (their inputs and
    outputs, the prompt graph pre-optimised)."""
    entry = manifest.get("prefix", {})
    return bool(entry.get("format") == PREFIX_FORMAT and entry.get("prompt", {}).get("optimized") == PROMPT_OPTIMIZED)


def prefix_files(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's prefix graph entries ({file, sha256, ...}); none when it has no prefix."""
    entry = manifest.get("prefix") or {}
    return [entry[k] for k in ("prefix", "prompt") if k in entry]


def current_export(
    out_dir: Path,
    sha: str,
    variant: str = BROWSER_VARIANT,
    embedding_dtype: str = BROWSER_EMBEDDING_DTYPE,
    prefix: bool = True,
) -> dict[str, Any] | None:
    """``out_dir``'s manifest when it is a current export of the checkpoint whose sha256 is ``sha``
    (see the module's docstring); else None."""
    manifest_path = Path(out_dir) / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        fresh = (
            manifest.get("manifest_version") == MANIFEST_VERSION
            and manifest.get("checkpoint_sha256") == sha
            and manifest.get("variant") == variant
            and manifest["embedding"]["dtype"] == embedding_dtype
            and all(
                (out_dir / d["file"]).is_file() and sha256_file(out_dir / d["file"]) == d["sha256"]
                for d in [*manifest["decoders"].values(), *prefix_files(manifest)]
            )
            and (not prefix or prefix_current(manifest))
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest if fresh else None
