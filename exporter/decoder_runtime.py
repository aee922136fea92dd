"""Run an exported decoder from Python exactly as the page runs it in the browser.

The page and this module share one contract, written in the manifest: prompts in image
pixels are scaled into the ``input_size`` (1024) long-side frame; without a box a padding
point (0, 0) with label -1 is appended (SAM's decoder was trained that way; both done by
``maskloop.prompt.Prompt.onnx_inputs``); the
``lowres`` decoder returns 256x256 logits for 4 candidates, which are upsampled as SAM's
``postprocess_masks`` does (bilinear to 1024x1024, crop the un-padded part, bilinear to
the image size) and thresholded at ``mask_threshold``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from maskloop.prompt import Prompt, preprocess_shape, xy_image_to_model

__all__ = ["OnnxDecoder", "Prediction", "Prompt", "preprocess_shape", "upsample_logits", "xy_image_to_model"]


def upsample_logits(
    low_res: npt.NDArray[np.float32], image_hw: tuple[int, int], input_size: int
) -> npt.NDArray[np.float32]:
    """(C,256,256) logits -> (C,H,W) logits at the original image size (SAM's postprocess).

    PyTorch is imported here, not with the module: a server that opens its decoder at start but
    decodes nothing itself (the page decodes) never loads it (~550 MiB, issue 24)."""
    import torch
    import torch.nn.functional as F

    h, w = image_hw
    new_h, new_w = preprocess_shape(h, w, input_size)
    t = torch.from_numpy(np.ascontiguousarray(low_res, dtype=np.float32))[None]
    t = F.interpolate(t, (input_size, input_size), mode="bilinear", align_corners=False)
    t = t[..., :new_h, :new_w]
    return F.interpolate(t, (h, w), mode="bilinear", align_corners=False)[0].numpy()


@dataclass
class Prediction:
    """One decoder run. ``masks`` (4,H,W) bool at image size, ``iou`` (4,), ``low_res_logits`` (4,256,256)."""

    masks: npt.NDArray[np.bool_]
    iou: npt.NDArray[np.float32]
    low_res_logits: npt.NDArray[np.float32]

    def best_index(self, n_prompts: int) -> int:
        """The candidate a tool shows: best of the 3 ambiguity masks for one point, else the single output."""
        return int(1 + np.argmax(self.iou[1:])) if n_prompts == 1 else 0


class OnnxDecoder:
    """An exported decoder (folder with manifest.json) on onnxruntime's CPU provider.

    Arguments:
      export_dir: folder written by ``export_decoder`` / ``ensure_decoder``.
      precision: ``fp32`` or ``int8`` (a key of ``manifest["decoders"]``).
      split: run the fp32 decoder as the page does when the export has the split pair
        (``manifest["prefix"]``, exporter/decoder_prefix.py): the per-image prefix once per
        image (``image_key`` names it; the last ``PREFIXES_KEPT`` are kept), then the per-prompt
        graph, about half the single graph's time per click.
    """

    PREFIXES_KEPT = 4

    def __init__(self, export_dir: str | Path, precision: str = "fp32", threads: int = 1, split: bool = False) -> None:
        import onnxruntime as ort

        self.export_dir = Path(export_dir)
        self.manifest = json.loads((self.export_dir / "manifest.json").read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        pair = self.manifest.get("prefix") if split and precision == "fp32" else None
        path = self.export_dir / (pair["prompt"]["file"] if pair else self.manifest["decoders"][precision]["file"])
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.prefix = (
            ort.InferenceSession(
                str(self.export_dir / pair["prefix"]["file"]), options, providers=["CPUExecutionProvider"]
            )
            if pair
            else None
        )
        self._image_sides: dict[object, dict[str, np.ndarray]] = {}  # image_key -> prefix outputs by name
        self._sides_lock = threading.Lock()  # a server's requests share one decoder
        self.input_size = int(self.manifest["input_size"])
        self.threshold = float(self.manifest["mask_threshold"])
        self.embedding_dtype = np.dtype(self.manifest["embedding"]["dtype"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def decode(self, embedding: np.ndarray, prompt: Prompt) -> Prediction:
        """Run the decoder on one prompt.

        Arguments:
          embedding: [1,256,64,64] image embedding (any float dtype).
          prompt: points / box / previous mask, in either frame (``maskloop.prompt``).
        Returns:
          the 4 candidates, ``masks`` (4,H,W) bool at the prompt's ``image_hw``.
        """
        low_res, iou, named = self._run(embedding, prompt)
        logits = named["masks"][0] if "masks" in named else upsample_logits(low_res, prompt.image_hw, self.input_size)
        return Prediction(masks=logits > self.threshold, iou=iou, low_res_logits=low_res)

    def decode_low_res(
        self, embedding: np.ndarray, prompt: Prompt, image_key: object = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """``decode`` without the upsampling: (low-res logits (4,256,256) float32, iou (4,)), as the page gets them.

        ``image_key``: names the embedding's image (e.g. its sha256) so that a split decoder runs
        its prefix once per image; None runs it every time."""
        low_res, iou, _ = self._run(embedding, prompt, image_key)
        return low_res, iou

    def predict(
        self,
        embedding: np.ndarray,
        image_hw: tuple[int, int],
        points_xy: npt.ArrayLike | None = None,
        labels: npt.ArrayLike | None = None,
        box_xyxy: npt.ArrayLike | None = None,
        mask_input: npt.ArrayLike | None = None,
    ) -> Prediction:
        """``decode`` of ``Prompt.from_arrays(image_hw, points_xy, labels, box_xyxy, mask_input)``:
        (N,2) x,y image pixels with (N,) labels 1 / 0, a (4,) x0,y0,x1,y1 box, (256,256) logits."""
        return self.decode(embedding, Prompt.from_arrays(image_hw, points_xy, labels, box_xyxy, mask_input))

    def predict_low_res(
        self,
        embedding: np.ndarray,
        image_hw: tuple[int, int],
        points_xy: npt.ArrayLike | None = None,
        labels: npt.ArrayLike | None = None,
        box_xyxy: npt.ArrayLike | None = None,
        mask_input: npt.ArrayLike | None = None,
        image_key: object = None,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """``decode_low_res`` with ``predict``'s arguments."""
        prompt = Prompt.from_arrays(image_hw, points_xy, labels, box_xyxy, mask_input)
        return self.decode_low_res(embedding, prompt, image_key)

    def _image_side(self, embedding: np.ndarray, image_key: object) -> dict[str, np.ndarray]:
        """The decoder's image inputs: the embedding, or (split) the prefix's outputs for it."""
        if self.prefix is None:
            return {"image_embeddings": np.asarray(embedding).astype(self.embedding_dtype)}
        with self._sides_lock:
            side = self._image_sides.pop(image_key, None) if image_key is not None else None
        if side is None:
            names = [o.name for o in self.prefix.get_outputs()]
            feeds = {"image_embeddings": np.asarray(embedding).astype(self.embedding_dtype)}
            side = dict(zip(names, self.prefix.run(None, feeds)))
        if image_key is not None:
            with self._sides_lock:
                self._image_sides[image_key] = side  # most recently used last
                while len(self._image_sides) > self.PREFIXES_KEPT:
                    del self._image_sides[next(iter(self._image_sides))]
        return side

    def _run(
        self, embedding: np.ndarray, prompt: Prompt, image_key: object = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], dict[str, np.ndarray]]:
        """(low_res [4,256,256], iou [4], all outputs by name) of one run."""
        feeds = {**self._image_side(embedding, image_key), **prompt.onnx_inputs(self.input_size)}
        outs = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})
        named: dict[str, np.ndarray] = dict(zip([o.name for o in self.session.get_outputs()], outs))
        return named["low_res_masks"][0], named["iou_predictions"][0], named
