"""Export SAM's prompt encoder + mask decoder to ONNX, quantise it, and write the manifest.

The exported decoder keeps SAM's ONNX interface (inputs ``image_embeddings``
[1,256,64,64], ``point_coords`` [1,N,2] in the 1024-long-side frame, ``point_labels``
[1,N] (1 fg, 0 bg, 2/3 box corners, -1 padding), ``mask_input`` [1,1,256,256],
``has_mask_input`` [1], ``orig_im_size`` [2] as (H, W)) but returns *every* mask
candidate: index 0 is SAM's single-mask output (meant for several prompts), 1..3 the
three ambiguity candidates of a single click, each with its predicted IoU.

Outputs: ``masks`` [1,4,H,W] logits at the original image size, ``iou_predictions``
[1,4], ``low_res_masks`` [1,4,256,256] logits (fed back as ``mask_input``). The
``lowres`` variant omits ``masks`` (the browser upsamples the one mask it shows).
``masks`` is SAM's ``postprocess_masks`` computed in the graph for any ``orig_im_size``;
``verify_decoder`` checks it on several image shapes.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import torch
import torch.nn.functional as F

from maskloop.digest import sha256_file
from maskloop.errors import UserError
from maskloop.masks import mask_iou

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

INPUT_NAMES = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"]
VARIANTS = ("full", "lowres")
EMBEDDING_DTYPES = ("float32", "float16")
#: Tolerances of ``--verify`` (see the issue that asked for them).
FP32_MAX_LOGIT_DIFF = 5e-3
FP32_MIN_MEAN_IOU = 0.99
INT8_MIN_MEAN_IOU = 0.97
#: The full variant's ``masks`` against SAM's own postprocess of the decoder's low-res logits
#: (only the in-graph resizing is compared, so one tolerance serves fp32 and int8).
FULL_RES_MAX_LOGIT_DIFF = 0.05
FULL_RES_MIN_MEAN_IOU = 0.99
#: (H, W) of the images ``verify_decoder`` draws prompts for, besides the caller's:
#: square, portrait, landscape, and odd sizes with no common aspect ratio.
VERIFY_SHAPES = ((512, 512), (741, 500), (427, 640), (333, 1001), (1001, 77))
#: The ``orig_im_size`` the decoder is traced with: no common aspect ratio, neither side 1024.
DUMMY_ORIG_IM_SIZE = (901, 1307)


#: Warnings of the export known to be harmless; any other one (e.g. a TracerWarning that a
#: tensor became a Python int, i.e. a constant of the trace) reaches the user.
class _WarningFilter(TypedDict, total=False):
    """Keyword arguments of ``warnings.filterwarnings``."""

    category: type[Warning]
    message: str
    module: str


HARMLESS_EXPORT_WARNINGS: tuple[_WarningFilter, ...] = (
    # SAM's graph needs the TorchScript exporter (dynamo=False), which torch deprecates.
    {"category": DeprecationWarning, "message": r"You are using the legacy TorchScript-based ONNX export"},
    {"category": DeprecationWarning, "message": r"The feature will be removed", "module": r"torch\.onnx\."},
    # The attention scale sqrt(head dim): the head dim is fixed by the weights.
    {
        "category": torch.jit.TracerWarning,
        "message": r"Converting a tensor to a Python float",
        "module": r"segment_anything\.modeling\.transformer$",
    },
)
MANIFEST_VERSION = 1


class DecoderOnnxModel(torch.nn.Module):
    """SAM's ``SamOnnxModel`` returning all 4 candidates, optionally low-res only / fp16 input."""

    def __init__(self, model: Sam, variant: str = "full", embedding_dtype: str = "float32") -> None:
        super().__init__()
        from segment_anything.utils.onnx import SamOnnxModel

        self.sam_onnx = SamOnnxModel(model, return_single_mask=False)
        self.variant = variant
        self.embedding_dtype = embedding_dtype

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        if self.embedding_dtype == "float16":
            image_embeddings = image_embeddings.float()
        m = self.sam_onnx.model
        sparse = self.sam_onnx._embed_points(point_coords, point_labels)
        dense = self.sam_onnx._embed_masks(mask_input, has_mask_input)
        low_res, iou = m.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=m.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
        if self.variant == "full":
            return self.upscale(low_res, orig_im_size), iou, low_res
        return iou, low_res

    def upscale(self, low_res: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """SAM's ``postprocess_masks`` with the crop to the un-padded size computed in the graph.

        Arguments:
          low_res: [1,C,256,256] logits in the padded 1024x1024 input frame.
          orig_im_size: [2] float (H, W) of the original image.
        Returns:
          [1,C,H,W] logits: upsampled to 1024x1024, cropped to the resized image
          (long side 1024), resized to (H, W), all bilinear without corner alignment.

        ``SamOnnxModel.mask_postprocessing`` slices with ``int(...)`` of a tensor, which
        tracing turns into a constant: the crop of the dummy input's image size, whatever the
        image. Index tensors from ``arange`` keep the crop a function of ``orig_im_size``.
        """
        size = self.sam_onnx.img_size
        masks = F.interpolate(low_res, size=(size, size), mode="bilinear", align_corners=False)
        prepadded = self.sam_onnx.resize_longest_image_size(orig_im_size, size)
        masks = masks.index_select(2, torch.arange(prepadded[0])).index_select(3, torch.arange(prepadded[1]))
        hw = orig_im_size.to(torch.int64)
        # tensors, not ints, so that the trace keeps the size a function of the input
        return F.interpolate(masks, size=(hw[0], hw[1]), mode="bilinear", align_corners=False)  # type: ignore[arg-type]


def input_names(variant: str) -> list[str]:
    """The lowres variant never resizes to the image, so it has no ``orig_im_size``."""
    return INPUT_NAMES if variant == "full" else INPUT_NAMES[:-1]


def output_names(variant: str) -> list[str]:
    return ["masks", "iou_predictions", "low_res_masks"] if variant == "full" else ["iou_predictions", "low_res_masks"]


def export_onnx_file(
    model: Sam, path: Path, *, opset: int = 17, variant: str = "full", embedding_dtype: str = "float32"
) -> None:
    """Trace the decoder wrapper into ``path`` (TorchScript exporter; SAM's graph needs it)."""
    if variant not in VARIANTS:
        raise UserError(f"unknown decoder variant {variant!r}: use one of {', '.join(VARIANTS)}")
    if embedding_dtype not in EMBEDDING_DTYPES:
        raise UserError(f"unknown embedding dtype {embedding_dtype!r}: use float32 or float16")
    wrapper = DecoderOnnxModel(model.cpu().eval(), variant, embedding_dtype)
    embed_dim = model.prompt_encoder.embed_dim
    grid = model.prompt_encoder.image_embedding_size
    mask_size = [4 * grid[0], 4 * grid[1]]
    dummy = (
        torch.randn(1, embed_dim, *grid, dtype=torch.float16 if embedding_dtype == "float16" else torch.float32),
        torch.randint(0, 1024, (1, 5, 2), dtype=torch.float),
        torch.randint(0, 4, (1, 5), dtype=torch.float),
        torch.randn(1, 1, *mask_size, dtype=torch.float),
        torch.tensor([1], dtype=torch.float),
        torch.tensor(DUMMY_ORIG_IM_SIZE, dtype=torch.float),
    )
    dynamic_axes = {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}}
    if variant == "full":
        dynamic_axes["masks"] = {2: "height", 3: "width"}
    with warnings.catch_warnings():
        for harmless in HARMLESS_EXPORT_WARNINGS:
            warnings.filterwarnings("ignore", **harmless)
        torch.onnx.export(
            wrapper,
            dummy,
            str(path),
            export_params=True,
            verbose=False,
            opset_version=opset,
            do_constant_folding=True,
            input_names=INPUT_NAMES,
            output_names=output_names(variant),
            dynamic_axes=dynamic_axes,
            dynamo=False,
        )


def quantize_file(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation (onnxruntime) of the two-way transformer's MLP weights, per channel.

    Only the MLP MatMuls are quantised: quantising the point positional encoding
    (coords @ gaussian matrix, then sin/cos) flips masks outright, and the attention
    projections drop the mean candidate IoU to ~0.93 on real embeddings, below the
    0.97 this project accepts (measured with ``verify_decoder``; see bench/RESULTS.md).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    mlp_nodes = [
        n.name for n in graph.node if n.op_type == "MatMul" and "/transformer/" in n.name and "/mlp/" in n.name
    ]
    logging.disable(logging.WARNING)  # onnxruntime suggests its pre-processing script on every call
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QUInt8,
            nodes_to_quantize=mlp_nodes,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        logging.disable(logging.NOTSET)


@dataclass
class VerifyReport:
    """ONNX against PyTorch on randomised prompts.

    ``full_res_*`` (full variant only): the ONNX ``masks`` output against SAM's
    ``postprocess_masks`` of the ONNX low-res logits, at each image's size.
    """

    cases: int
    max_low_res_diff: float
    mean_iou: float
    min_iou: float
    image_sizes: list[list[int]] = field(default_factory=list)
    full_res_max_diff: float | None = None
    full_res_mean_iou: float | None = None
    full_res_min_iou: float | None = None

    def as_dict(self) -> dict:
        out = {
            "cases": self.cases,
            "max_low_res_diff": self.max_low_res_diff,
            "mean_iou": self.mean_iou,
            "min_iou": self.min_iou,
            "image_sizes": self.image_sizes,
        }
        if self.full_res_max_diff is not None:
            out.update(
                full_res_max_diff=self.full_res_max_diff,
                full_res_mean_iou=self.full_res_mean_iou,
                full_res_min_iou=self.full_res_min_iou,
            )
        return out


def random_prompts(rng: np.random.Generator, n_cases: int, shapes: list[tuple[int, int]], input_size: int = 1024):
    """Yield (point_coords [1,N,2], point_labels [1,N], use_mask, image_hw) in the 1024 frame.

    Case i is drawn for the image of (H, W) ``shapes[i % len(shapes)]``. Kinds cycle
    through: points only, box only, points + box, each with and without a previous mask.
    """
    for i in range(n_cases):
        h, w = shapes[i % len(shapes)]
        scale = input_size / max(h, w)
        rh, rw = h * scale, w * scale
        kind = i % 3
        n_points = int(rng.integers(1, 5))
        pts = rng.uniform([0, 0], [rw, rh], size=(n_points, 2))
        labels = rng.integers(0, 2, size=n_points).astype(np.float32)
        labels[0] = 1
        x0, y0 = rng.uniform([0, 0], [rw * 0.6, rh * 0.6])
        box = np.array([[x0, y0], [x0 + rng.uniform(0.2, 0.4) * rw, y0 + rng.uniform(0.2, 0.4) * rh]])
        if kind == 0:
            coords, labs = np.concatenate([pts, [[0, 0]]]), np.concatenate([labels, [-1]])
        elif kind == 1:
            coords, labs = box, np.array([2, 3], np.float32)
        else:
            coords, labs = np.concatenate([pts, box]), np.concatenate([labels, [2, 3]])
        yield coords[None].astype(np.float32), labs[None].astype(np.float32), bool((i // 3) % 2), (h, w)


@dataclass
class ReferenceCase:
    """One verification prompt and PyTorch's answer to it.

    ``feeds`` holds every input of ``INPUT_NAMES``: ``image_embeddings`` [1,256,64,64] in the
    export's embedding dtype, ``point_coords`` [1,N,2] (1024 frame), ``point_labels`` [1,N],
    ``mask_input`` [1,1,256,256] (the reference's own previous single-mask logits when fed back),
    ``has_mask_input`` [1], ``orig_im_size`` [2] (H, W). ``low_res`` is ``SamOnnxModel``'s
    [1,4,256,256] logits for them.
    """

    feeds: dict[str, np.ndarray]
    image_hw: tuple[int, int]
    low_res: np.ndarray


def verify_shapes(image_hw: tuple[int, int]) -> list[tuple[int, int]]:
    """(H, W) of the images verification prompts are drawn for: the caller's, then ``VERIFY_SHAPES``."""
    return list(dict.fromkeys([(int(image_hw[0]), int(image_hw[1])), *VERIFY_SHAPES]))


def reference_cases(
    model: Sam,
    embedding: np.ndarray,
    shapes: list[tuple[int, int]],
    *,
    embedding_dtype: str = "float32",
    n_cases: int = 24,
    seed: int = 0,
) -> list[ReferenceCase]:
    """PyTorch's ``SamOnnxModel`` (all 4 candidates) on ``random_prompts`` drawn for ``shapes`` in turn.

    Every other case feeds back the reference's single-mask logits of the case before, so the
    cases depend on PyTorch only: one list serves every graph of an export (fp32, int8, the
    prefix + prompt pair), each compared with the same answers.

    Arguments:
      embedding: [1,256,64,64] float32 image embedding (a real image's, ideally); cast to
        ``embedding_dtype`` for the graphs and back to float32 for PyTorch.
    """
    from segment_anything.utils.onnx import SamOnnxModel

    reference = SamOnnxModel(model.cpu().eval(), return_single_mask=False)
    input_size = int(model.image_encoder.img_size)
    emb_in = embedding.astype(np.float16 if embedding_dtype == "float16" else np.float32)
    emb_ref = torch.from_numpy(emb_in.astype(np.float32))
    prev_low_res = np.zeros((1, 1, 256, 256), np.float32)
    cases = []
    rng = np.random.default_rng(seed)
    for coords, labels, use_mask, hw in random_prompts(rng, n_cases, shapes, input_size):
        feeds = {
            "image_embeddings": emb_in,
            "point_coords": coords,
            "point_labels": labels,
            "mask_input": prev_low_res if use_mask else np.zeros_like(prev_low_res),
            "has_mask_input": np.array([1.0 if use_mask else 0.0], np.float32),
            "orig_im_size": np.array(hw, np.float32),
        }
        with torch.no_grad():
            _, _, ref_low = reference(emb_ref, *[torch.from_numpy(feeds[k]) for k in INPUT_NAMES[1:]])
        cases.append(ReferenceCase(feeds, hw, ref_low.numpy()))
        prev_low_res = cases[-1].low_res[:, :1]
    return cases


def case_shapes(cases: list[ReferenceCase]) -> list[list[int]]:
    """The distinct (H, W) the cases were drawn for, in order (a report's ``image_sizes``)."""
    return [list(hw) for hw in dict.fromkeys(c.image_hw for c in cases)]


def verify_decoder(
    model: Sam,
    onnx_path: Path,
    embedding: np.ndarray,
    image_hw: tuple[int, int],
    *,
    variant: str = "full",
    embedding_dtype: str = "float32",
    n_cases: int = 24,
    seed: int = 0,
    reference: list[ReferenceCase] | None = None,
) -> VerifyReport:
    """Run the ONNX decoder and PyTorch's ``SamOnnxModel`` on the same random prompts.

    Arguments:
      embedding: [1,256,64,64] float32 image embedding (a real image's, ideally).
      image_hw: (H, W) of the original image the prompts are drawn for; the full variant
        is verified on it and on the images of ``VERIFY_SHAPES`` in turn (``orig_im_size``).
      reference: PyTorch's answers computed already (``reference_cases`` on this embedding,
        dtype and shapes); drawn here from ``image_hw``, ``n_cases`` and ``seed`` if None.
    Returns:
      VerifyReport over all 4 candidates: max |low-res logit diff| and mask IoU at 256x256
      (masks thresholded at the model's mask threshold); for the full variant also the
      HxW ``masks`` against SAM's ``postprocess_masks`` of the ONNX low-res logits.
    """
    import onnxruntime as ort
    from segment_anything.utils.transforms import ResizeLongestSide

    if reference is None:
        # the full variant is the only one whose output depends on the image's size
        shapes = verify_shapes(image_hw) if variant == "full" else [(int(image_hw[0]), int(image_hw[1]))]
        reference = reference_cases(
            model, embedding, shapes, embedding_dtype=embedding_dtype, n_cases=n_cases, seed=seed
        )
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    threshold = float(model.mask_threshold)
    input_size = int(model.image_encoder.img_size)
    wanted = {i.name for i in session.get_inputs()}  # the lowres variant has no orig_im_size
    diffs: list[float] = []
    ious: list[float] = []
    full_diffs: list[float] = []
    full_ious: list[float] = []
    for case in reference:
        hw = case.image_hw
        feeds = {k: v for k, v in case.feeds.items() if k in wanted}
        outs = dict(zip(output_names(variant), session.run(None, feeds)))
        ref_low = case.low_res
        low = outs["low_res_masks"]
        diffs.append(float(np.abs(low - ref_low).max()))
        ious.extend(mask_iou(low[0, j] > threshold, ref_low[0, j] > threshold) for j in range(low.shape[1]))
        if "masks" in outs:
            prepadded = ResizeLongestSide.get_preprocess_shape(hw[0], hw[1], input_size)
            with torch.no_grad():
                ref_full = model.postprocess_masks(torch.from_numpy(low), prepadded, hw).numpy()
            full = outs["masks"]
            if full.shape != ref_full.shape:
                raise UserError(
                    f"the decoder's masks for a {hw[1]}x{hw[0]} (w x h) image are {full.shape}, not {ref_full.shape}"
                )
            full_diffs.append(float(np.abs(full - ref_full).max()))
            full_ious.extend(mask_iou(full[0, j] > threshold, ref_full[0, j] > threshold) for j in range(full.shape[1]))
    report = VerifyReport(
        cases=len(reference),
        max_low_res_diff=max(diffs),
        mean_iou=float(np.mean(ious)),
        min_iou=float(np.min(ious)),
        image_sizes=case_shapes(reference),
    )
    if full_diffs:
        report.full_res_max_diff = max(full_diffs)
        report.full_res_mean_iou = float(np.mean(full_ious))
        report.full_res_min_iou = float(np.min(full_ious))
    return report


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
) -> dict:
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


def _export_prefix(model, out_dir, opset, embedding_dtype, reference: list[ReferenceCase] | None) -> dict:
    """The manifest's ``prefix`` entry: the two graphs written and verified on the export's
    ``reference`` (the caller's image shape and ``VERIFY_SHAPES``; no verification if None)."""
    from maskloop.exporter.decoder_prefix import export_prefix_pair, prefix_manifest_entry, verify_prefix_pair

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
    variant: str = "lowres",
    embedding_dtype: str = "float16",
    checkpoint_sha: str | None = None,
    prefix: bool = True,
) -> dict:
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
    """
    from maskloop.exporter.registry import checkpoint_sha256, load_sam

    out_dir = Path(out_dir)
    sha = checkpoint_sha or checkpoint_sha256(model_type, checkpoint)
    manifest_path = out_dir / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
            fresh = (
                manifest.get("manifest_version") == MANIFEST_VERSION
                and manifest.get("checkpoint_sha256") == sha
                and manifest.get("variant") == variant
                and manifest["embedding"]["dtype"] == embedding_dtype
                and all(
                    (out_dir / d["file"]).is_file() and sha256_file(out_dir / d["file"]) == d["sha256"]
                    for d in [*manifest["decoders"].values(), *prefix_files(manifest)]
                )
                and (not prefix or _prefix_current(manifest))
            )
        except (ValueError, KeyError, TypeError):
            fresh = False
        if fresh:
            return manifest
    if model is None:
        model = load_sam(model_type, checkpoint)
    return export_decoder(
        model,
        out_dir,
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


def _prefix_current(manifest: dict) -> bool:
    """The manifest lists prefix graphs written as this version writes them (their inputs and
    outputs, the prompt graph pre-optimised)."""
    from maskloop.exporter.decoder_prefix import PREFIX_FORMAT, PROMPT_OPTIMIZED

    entry = manifest.get("prefix", {})
    return entry.get("format") == PREFIX_FORMAT and entry.get("prompt", {}).get("optimized") == PROMPT_OPTIMIZED


def prefix_files(manifest: dict) -> list[dict]:
    """The manifest's prefix graph entries ({file, sha256, ...}); none when it has no prefix."""
    entry = manifest.get("prefix") or {}
    return [entry[k] for k in ("prefix", "prompt") if k in entry]


def check_verification(verification: dict[str, dict]) -> None:
    """Raise UserError if a decoder is outside the tolerances stated in this module."""
    fp32 = verification.get("fp32")
    if fp32 and (fp32["max_low_res_diff"] > FP32_MAX_LOGIT_DIFF or fp32["mean_iou"] < FP32_MIN_MEAN_IOU):
        raise UserError(
            f"fp32 decoder out of tolerance: max low-res logit diff {fp32['max_low_res_diff']:.2e} "
            f"(limit {FP32_MAX_LOGIT_DIFF}), mean IoU {fp32['mean_iou']:.4f} (limit {FP32_MIN_MEAN_IOU})"
        )
    int8 = verification.get("int8")
    if int8 and int8["mean_iou"] < INT8_MIN_MEAN_IOU:
        raise UserError(f"int8 decoder out of tolerance: mean IoU {int8['mean_iou']:.4f} (limit {INT8_MIN_MEAN_IOU})")
    split = verification.get("prefix")
    if split and (split["max_low_res_diff"] > FP32_MAX_LOGIT_DIFF or split["mean_iou"] < FP32_MIN_MEAN_IOU):
        raise UserError(
            f"the prefix + prompt decoder graphs are out of tolerance: max low-res logit diff "
            f"{split['max_low_res_diff']:.2e} (limit {FP32_MAX_LOGIT_DIFF}), mean IoU {split['mean_iou']:.4f} "
            f"(limit {FP32_MIN_MEAN_IOU})"
        )
    for precision, report in verification.items():
        if (
            precision != "prefix"
            and "full_res_max_diff" in report
            and (
                report["full_res_max_diff"] > FULL_RES_MAX_LOGIT_DIFF
                or report["full_res_mean_iou"] < FULL_RES_MIN_MEAN_IOU
            )
        ):
            raise UserError(
                f"{precision} decoder's full-resolution masks differ from SAM's postprocess: max logit diff "
                f"{report['full_res_max_diff']:.2e} (limit {FULL_RES_MAX_LOGIT_DIFF}), mean IoU "
                f"{report['full_res_mean_iou']:.4f} (limit {FULL_RES_MIN_MEAN_IOU}) on images of (H, W) {report['image_sizes']}"
            )
