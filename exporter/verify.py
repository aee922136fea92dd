"""Verification of exported decoder graphs against PyTorch's ``SamOnnxModel`` on random prompts.

Every graph of an export (fp32, int8, the prefix + prompt pair) is run on the same
``reference_cases``: prompts drawn for several image shapes (``VERIFY_SHAPES``), each answered
once by PyTorch. ``check_verification`` holds the tolerances an export must meet.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from maskloop.errors import UserError
from maskloop.exporter.decoder_graph import INPUT_NAMES, output_names
from maskloop.masks import mask_iou
from maskloop.prompt import FOREGROUND, Prompt

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

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


def random_prompts(
    rng: np.random.Generator, n_cases: int, shapes: list[tuple[int, int]], input_size: int = 1024
) -> Iterator[tuple[Prompt, bool]]:
    """Yield (prompt in the model frame of long side ``input_size``, whether to feed back a previous mask).

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
        labels[0] = FOREGROUND
        x0, y0 = rng.uniform([0, 0], [rw * 0.6, rh * 0.6])
        box = np.array([x0, y0, x0 + rng.uniform(0.2, 0.4) * rw, y0 + rng.uniform(0.2, 0.4) * rh])
        prompt = Prompt(
            (h, w),
            pts.astype(np.float32) if kind != 1 else np.zeros((0, 2), np.float32),
            labels if kind != 1 else np.zeros(0, np.float32),
            box_xyxy=box.astype(np.float32) if kind != 0 else None,
            frame="model",
            input_size=input_size,
        )
        yield prompt, bool((i // 3) % 2)


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
    prev_low_res = np.zeros((1, 256, 256), np.float32)
    cases: list[ReferenceCase] = []
    rng = np.random.default_rng(seed)
    for prompt, use_mask in random_prompts(rng, n_cases, shapes, input_size):
        if use_mask:
            prompt = replace(prompt, mask_input=prev_low_res)
        feeds = {"image_embeddings": emb_in, **prompt.onnx_inputs(input_size)}
        with torch.no_grad():
            _, _, ref_low = reference(emb_ref, *[torch.from_numpy(feeds[k]) for k in INPUT_NAMES[1:]])
        cases.append(ReferenceCase(feeds, prompt.image_hw, ref_low.numpy()))
        prev_low_res = cases[-1].low_res[0, :1]
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
