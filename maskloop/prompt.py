"""One prompt for SAM's decoder: clicked points, a box, a previous mask, and the frame they are in.

Coordinates are (x, y). In the ``image`` frame they are pixels of the original (EXIF-upright)
image of (H, W) ``image_hw``; in the ``model`` frame they are pixels of the model input, the image
resized so that its long side is ``input_size`` (1024 for SAM; the manifest's ``input_size``) and
padded bottom/right. SAM's decoder takes the model frame, so ``onnx_inputs`` scales an ``image``
prompt first, as the page does.

SAM's ONNX contract (``segment_anything.utils.onnx.SamOnnxModel``): ``point_coords`` [1,N,2] holds
the points, then the box's two corners (labels 2 and 3); a prompt without a box ends with a padding
point (0, 0) of label -1, as SAM's decoder was trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

#: Point labels of SAM's decoder.
BACKGROUND, FOREGROUND, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT, PADDING = 0, 1, 2, 3, -1
#: The side of the decoder's low-res logits (``mask_input`` and ``low_res_masks``).
LOW_RES = 256

Frame = Literal["image", "model"]


def preprocess_shape(height: int, width: int, input_size: int) -> tuple[int, int]:
    """(h, w) of an image resized so that its long side is ``input_size`` (SAM's rounding)."""
    scale = input_size / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def xy_image_to_model(xy_image: npt.ArrayLike, image_hw: tuple[int, int], input_size: int) -> FloatArray:
    """Scale (N,2) x,y pixel coordinates of the original image of (H, W) ``image_hw`` into the model frame."""
    h, w = image_hw
    new_h, new_w = preprocess_shape(h, w, input_size)
    xy = np.asarray(xy_image, dtype=np.float32).reshape(-1, 2).copy()
    xy[:, 0] *= new_w / w
    xy[:, 1] *= new_h / h
    return xy


def _no_points() -> FloatArray:
    return np.zeros((0, 2), np.float32)


def _no_labels() -> FloatArray:
    return np.zeros((0,), np.float32)


@dataclass(frozen=True, eq=False)
class Prompt:
    """What a person (or a simulation) asked the decoder for, on one image.

    Arguments:
      image_hw: (H, W) of the original (EXIF-upright) image.
      points_xy: (N,2) float32 x,y of the clicks, in ``frame``.
      labels: (N,) float32, ``FOREGROUND`` (1) or ``BACKGROUND`` (0) per point.
      box_xyxy: (4,) float32 x0,y0,x1,y1 in ``frame``, or None.
      mask_input: (1,256,256) float32 low-res logits of an earlier prediction (refinement), or None.
      frame: ``"image"`` (original-image pixels) or ``"model"`` (the ``input_size`` long-side frame).
      input_size: the model frame's long side; required for a ``model`` prompt.

    Arrays are brought to these shapes and dtypes on construction (any array-like is accepted).
    """

    image_hw: tuple[int, int]
    points_xy: FloatArray = field(default_factory=_no_points)
    labels: FloatArray = field(default_factory=_no_labels)
    box_xyxy: FloatArray | None = None
    mask_input: FloatArray | None = None
    frame: Frame = "image"
    input_size: int | None = None

    def __post_init__(self) -> None:
        points = np.asarray(self.points_xy, np.float32).reshape(-1, 2)
        labels = np.asarray(self.labels, np.float32).reshape(-1)
        if len(points) != len(labels):
            raise ValueError(f"a prompt needs one label per point, got {len(points)} points and {len(labels)} labels")
        if self.frame not in ("image", "model"):
            raise ValueError(f"unknown prompt frame {self.frame!r}: use 'image' or 'model'")
        if self.frame == "model" and self.input_size is None:
            raise ValueError("a prompt in the model frame needs its input_size")
        object.__setattr__(self, "image_hw", (int(self.image_hw[0]), int(self.image_hw[1])))
        object.__setattr__(self, "points_xy", points)
        object.__setattr__(self, "labels", labels)
        if self.box_xyxy is not None:
            object.__setattr__(self, "box_xyxy", np.asarray(self.box_xyxy, np.float32).reshape(4))
        if self.mask_input is not None:
            mask = np.asarray(self.mask_input, np.float32).reshape(1, LOW_RES, LOW_RES)
            object.__setattr__(self, "mask_input", mask)

    @classmethod
    def from_arrays(
        cls,
        image_hw: tuple[int, int],
        points_xy: npt.ArrayLike | None = None,
        labels: npt.ArrayLike | None = None,
        box_xyxy: npt.ArrayLike | None = None,
        mask_input: npt.ArrayLike | None = None,
    ) -> Prompt:
        """An ``image``-frame prompt from the decoders' older parallel arguments (None: absent;
        ``labels`` are read only when there are points)."""
        points = np.asarray(points_xy, np.float32).reshape(-1, 2) if points_xy is not None else _no_points()
        return cls(
            image_hw=image_hw,
            points_xy=points,
            labels=np.asarray(labels, np.float32).reshape(-1) if len(points) else _no_labels(),
            box_xyxy=None if box_xyxy is None else np.asarray(box_xyxy, np.float32),
            mask_input=None if mask_input is None else np.asarray(mask_input, np.float32),
        )

    @property
    def n_points(self) -> int:
        """The number of clicked points (a box's corners and the padding point not counted)."""
        return len(self.points_xy)

    def to_model(self, input_size: int) -> Prompt:
        """This prompt in the model frame of long side ``input_size``."""
        if self.frame == "model":
            if self.input_size != input_size:
                raise ValueError(f"the prompt is in a {self.input_size} model frame, not {input_size}")
            return self
        box = None if self.box_xyxy is None else xy_image_to_model(self.box_xyxy, self.image_hw, input_size).reshape(4)
        return Prompt(
            image_hw=self.image_hw,
            points_xy=xy_image_to_model(self.points_xy, self.image_hw, input_size),
            labels=self.labels,
            box_xyxy=box,
            mask_input=self.mask_input,
            frame="model",
            input_size=input_size,
        )

    def point_inputs(self, input_size: int) -> tuple[FloatArray, FloatArray]:
        """(coords (K,2) float32 in the model frame, labels (K,) float32): the points, then the box
        corners (2, 3) or, without a box, the padding point (0, 0) with label -1."""
        if not self.n_points and self.box_xyxy is None:
            raise ValueError("a prediction needs at least one point or a box")
        model = self.to_model(input_size)
        if model.box_xyxy is None:
            extra_xy, extra_labels = np.zeros((1, 2), np.float32), np.array([PADDING], np.float32)
        else:
            extra_xy = model.box_xyxy.reshape(2, 2)
            extra_labels = np.array([BOX_TOP_LEFT, BOX_BOTTOM_RIGHT], np.float32)
        coords = np.concatenate([model.points_xy, extra_xy]).astype(np.float32)
        return coords, np.concatenate([model.labels, extra_labels]).astype(np.float32)

    def onnx_inputs(self, input_size: int) -> dict[str, FloatArray]:
        """SAM's ONNX decoder inputs but ``image_embeddings``, by name.

        Returns:
          ``point_coords`` [1,K,2] (model frame), ``point_labels`` [1,K] (see ``point_inputs``),
          ``mask_input`` [1,1,256,256] (zeros without one), ``has_mask_input`` [1] (1.0 or 0.0),
          ``orig_im_size`` [2] (H, W); all float32.
        """
        coords, labels = self.point_inputs(input_size)
        has_mask = self.mask_input is not None
        return {
            "point_coords": coords[None],
            "point_labels": labels[None],
            "mask_input": (
                self.mask_input[None] if self.mask_input is not None else np.zeros((1, 1, LOW_RES, LOW_RES), np.float32)
            ),
            "has_mask_input": np.array([1.0 if has_mask else 0.0], np.float32),
            "orig_im_size": np.array(self.image_hw, np.float32),
        }
