"""Export SAM's decoder into a folder: the graphs, their int8 copy, verification, ``manifest.json``.

The graph itself is ``exporter/decoder_graph.py`` (SAM's ONNX interface, all 4 mask
candidates), the split prefix + prompt pair ``exporter/decoder_prefix.py``, int8 quantisation
``exporter/quantize.py`` and the checks against PyTorch ``exporter/verify.py``; this module writes
them into one folder and describes it in the manifest (``ensure_decoder`` reuses a current one:
``exporter/decoder_cache.py`` checks it without torch).
The names of those modules that callers used from here are re-exported.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from maskloop.digest import sha256_file
from maskloop.errors import UserError
from maskloop.exporter.decoder_cache import (
    BROWSER_EMBEDDING_DTYPE,
    BROWSER_VARIANT,
    MANIFEST_VERSION,
    current_export,
    prefix_files,
)
from maskloop.exporter.decoder_graph import (
    DUMMY_ORIG_IM_SIZE,
    EMBEDDING_DTYPES,
    HARMLESS_EXPORT_WARNINGS,
    INPUT_NAMES,
    VARIANTS,
    DecoderOnnxModel,
    export_onnx_file,
    input_names,
    output_names,
)
from maskloop.exporter.decoder_prefix import (
    export_prefix_pair,
    prefix_manifest_entry,
    verify_prefix_pair,
)
from maskloop.exporter.quantize import quantize_file
from maskloop.exporter.verify import (
    FP32_MAX_LOGIT_DIFF,
    FP32_MIN_MEAN_IOU,
    FULL_RES_MAX_LOGIT_DIFF,
    FULL_RES_MIN_MEAN_IOU,
    INT8_MIN_MEAN_IOU,
    VERIFY_SHAPES,
    ReferenceCase,
    VerifyReport,
    check_verification,
    reference_cases,
    verify_decoder,
    verify_shapes,
)
from maskloop.filelock import file_lock, remove_leftovers, replace_dir, temp_dir_beside

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

__all__ = [
    "DUMMY_ORIG_IM_SIZE",
    "EMBEDDING_DTYPES",
    "FP32_MAX_LOGIT_DIFF",
    "FP32_MIN_MEAN_IOU",
    "FULL_RES_MAX_LOGIT_DIFF",
    "FULL_RES_MIN_MEAN_IOU",
    "HARMLESS_EXPORT_WARNINGS",
    "INPUT_NAMES",
    "INT8_MIN_MEAN_IOU",
    "MANIFEST_VERSION",
    "VARIANTS",
    "VERIFY_SHAPES",
    "DecoderOnnxModel",
    "VerifyReport",
    "check_verification",
    "ensure_decoder",
    "export_decoder",
    "export_onnx_file",
    "input_names",
    "output_names",
    "prefix_files",
    "quantize_file",
    "sha256_file",
    "verify_decoder",
]


def export_decoder(
    model: Sam,
    out_dir: Path,
    *,
    model_type: str,
    checkpoint_sha256: str,
    quantize: bool = True,
    opset: int = 17,
    verify: bool = True,
    variant: str = "full",
    embedding_dtype: str = "float32",
    verify_embedding: np.ndarray | None = None,
    verify_image_hw: tuple[int, int] = (768, 1024),
    drop_failing_int8: bool = False,
    prefix: bool = False,
) -> dict[str, Any]:
    """Write ``decoder.onnx`` (+ ``decoder.quant.onnx``) and ``manifest.json`` into ``out_dir``.

    Arguments:
      verify_embedding: [1,256,64,64] embedding to verify on; random N(0, 0.1) if None.
      drop_failing_int8: drop an int8 decoder outside tolerance instead of raising.
      prefix: also write the fp32 decoder as a per-image prefix + per-prompt graph
        (``exporter/decoder_prefix.py``; lowres variant only), listed as the manifest's ``prefix``.
        Every graph is verified against one PyTorch reference (``reference_cases``), drawn for
        ``verify_image_hw`` and ``VERIFY_SHAPES`` when there is a prefix or the variant is full.
    Returns:
      (dict) the manifest. Raises UserError when verification is out of tolerance.
    """
    import onnx
    import onnxruntime

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    decoders: dict[str, dict] = {}
    fp32_path = out_dir / "decoder.onnx"
    export_onnx_file(model, fp32_path, opset=opset, variant=variant, embedding_dtype=embedding_dtype)
    files = {"fp32": fp32_path}
    if quantize:
        files["int8"] = out_dir / "decoder.quant.onnx"
        quantize_file(fp32_path, files["int8"])
    if verify_embedding is None:
        grid = model.prompt_encoder.image_embedding_size
        verify_embedding = (
            np.random.default_rng(1).normal(0, 0.1, (1, model.prompt_encoder.embed_dim, *grid)).astype(np.float32)
        )
    verification: dict[str, dict] = {}
    reference = None
    if verify:
        # One PyTorch reference for every graph: the prefix pair is verified on several image
        # shapes, and so then are the single graphs (the full variant always is).
        hw = (int(verify_image_hw[0]), int(verify_image_hw[1]))
        shapes = verify_shapes(hw) if variant == "full" or prefix else [hw]
        reference = reference_cases(model, verify_embedding, shapes, embedding_dtype=embedding_dtype)
    for precision, path in files.items():
        entry = {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
        if verify:
            report = verify_decoder(
                model,
                path,
                verify_embedding,
                verify_image_hw,
                variant=variant,
                embedding_dtype=embedding_dtype,
                reference=reference,
            )
            verification[precision] = report.as_dict()
            entry["verify"] = report.as_dict()
        decoders[precision] = entry
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "model_type": model_type,
        "checkpoint_sha256": checkpoint_sha256,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "opset": opset,
        "variant": variant,
        "input_size": int(model.image_encoder.img_size),
        "pixel_mean": [float(v) for v in model.pixel_mean.flatten()],
        "pixel_std": [float(v) for v in model.pixel_std.flatten()],
        "mask_threshold": float(model.mask_threshold),
        "low_res_mask_size": [4 * s for s in model.prompt_encoder.image_embedding_size],
        "embedding": {
            "shape": [1, model.prompt_encoder.embed_dim, *model.prompt_encoder.image_embedding_size],
            "dtype": embedding_dtype,
        },
        "inputs": input_names(variant),
        "outputs": output_names(variant),
        "mask_candidates": {
            "count": int(model.mask_decoder.num_mask_tokens),
            "single_mask_index": 0,
            "multimask_indices": [1, 2, 3],
        },
        "decoders": decoders,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }
    if prefix:
        manifest["prefix"] = _export_prefix(model, out_dir, opset, embedding_dtype, reference)
        if verify:
            verification["prefix"] = manifest["prefix"]["verify"]
    if verify and drop_failing_int8 and "int8" in verification:
        try:
            check_verification({"int8": verification["int8"]})
        except UserError as exc:
            decoders.pop("int8")
            files["int8"].unlink()
            manifest["int8_rejected"] = str(exc)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if verify:
        check_verification({k: v for k, v in verification.items() if k in decoders or k == "prefix"})
    return manifest


def _export_prefix(
    model: Sam, out_dir: Path, opset: int, embedding_dtype: str, reference: list[ReferenceCase] | None
) -> dict[str, Any]:
    """The manifest's ``prefix`` entry: the two graphs written and verified on the export's
    ``reference`` (the caller's image shape and ``VERIFY_SHAPES``; no verification if None)."""
    prefix_path, prompt_path = export_prefix_pair(model, out_dir, opset=opset, embedding_dtype=embedding_dtype)
    report = None
    if reference is not None:
        report = verify_prefix_pair(model, prefix_path, prompt_path, reference=reference)
    return prefix_manifest_entry(prefix_path, prompt_path, report)


def ensure_decoder(
    model_type: str,
    checkpoint: str | Path | None,
    out_dir: Path,
    model: Sam | None = None,
    verify_embedding: np.ndarray | None = None,
    verify_image_hw: tuple[int, int] = (768, 1024),
    variant: str = BROWSER_VARIANT,
    embedding_dtype: str = BROWSER_EMBEDDING_DTYPE,
    checkpoint_sha: str | None = None,
    prefix: bool = True,
    on_wait: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The manifest of ``out_dir``'s decoder export, exporting first if it is missing or stale.

    ``checkpoint_sha`` is the checkpoint's sha256 when the caller has it already (hashing a
    vit_h checkpoint reads 2.5 GB).

    The defaults are the browser's decoder: 256x256 logits only (the page upsamples the one
    mask it shows, instead of ONNX resizing four to full size) and a float16 embedding
    input (what the server sends), cast to float32 inside the graph; with ``prefix`` the fp32
    decoder split into a per-image prefix and a per-prompt graph too (the page runs the prefix
    once per opened image).
    An export is reused when its manifest names the same checkpoint sha256, variant and
    embedding dtype, and every decoder file is present with its recorded sha256. A fresh export writes fp32 and
    int8 decoders; an int8 decoder outside tolerance is dropped (noted in the manifest),
    an fp32 one outside tolerance is an error.

    Safe across processes: the export runs under a lock file beside ``out_dir``
    (``.<name>.lock``), into a temporary folder renamed to ``out_dir`` when complete
    (``maskloop/filelock.py``); ``on_wait`` is called when another process is exporting it.
    """
    from maskloop.exporter.registry import checkpoint_sha256, load_sam

    out_dir = Path(out_dir)
    sha = checkpoint_sha or checkpoint_sha256(model_type, checkpoint)
    manifest = current_export(out_dir, sha, variant, embedding_dtype, prefix)
    if manifest is not None:
        return manifest
    # Several servers may start at once on a model never exported: one exports, the others wait
    # for it and then find it made. The export goes to a folder beside out_dir and is renamed
    # into place, so a reader never sees half of it.
    with file_lock(out_dir.parent / f".{out_dir.name}.lock", on_wait=on_wait):
        manifest = current_export(out_dir, sha, variant, embedding_dtype, prefix)
        if manifest is not None:
            return manifest
        remove_leftovers(out_dir)
        if model is None:
            model = load_sam(model_type, checkpoint)
        tmp = temp_dir_beside(out_dir)
        try:
            manifest = export_decoder(
                model,
                tmp,
                model_type=model_type,
                checkpoint_sha256=sha,
                quantize=True,
                verify=True,
                verify_embedding=verify_embedding,
                verify_image_hw=verify_image_hw,
                drop_failing_int8=True,
                variant=variant,
                embedding_dtype=embedding_dtype,
                prefix=prefix and variant == "lowres",
            )
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        replace_dir(tmp, out_dir)
        return manifest
