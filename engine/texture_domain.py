"""A domain where SAM is weak: objects that differ from their background by texture alone.

Each image is a crop of one of scikit-image's real texture photographs (``brick``, ``grass``,
``gravel``) with a few smooth blob-shaped objects cut from another of them. Every texture patch
is normalised to the same mean and standard deviation, so no colour or brightness edge gives an
object away: only its texture does. The masks are exact (the blobs are rasterised, then the
image is composed from them), so the COCO file is a perfect ground truth.

Used by the training tests and ``bench/bench_train.py``; ``write_texture_domain`` writes a folder
that ``maskloop serve``/``import-coco``/``train`` take like any other.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

TEXTURES = ("brick", "grass", "gravel")
#: Every texture patch is brought to this mean and standard deviation (grey levels).
PATCH_MEAN, PATCH_STD = 128.0, 36.0


def _texture(name: str) -> np.ndarray:
    """scikit-image's texture photograph ``name`` as float32 HxW (512x512, grey)."""
    from skimage import data

    texture: np.ndarray = getattr(data, name)().astype(np.float32)
    return texture


def _patch(rng: np.random.Generator, texture: np.ndarray, size: int) -> np.ndarray:
    """A ``size``x``size`` crop of ``texture``, randomly scaled, flipped and turned, normalised."""
    scale = rng.uniform(1.0, 1.5) * size / min(texture.shape)  # never below the crop: no tiling seams
    scaled = cv2.resize(texture, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    y = int(rng.integers(0, scaled.shape[0] - size + 1))
    x = int(rng.integers(0, scaled.shape[1] - size + 1))
    patch = np.rot90(scaled[y : y + size, x : x + size], int(rng.integers(0, 4)))
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    normalised: np.ndarray = (patch - patch.mean()) / (patch.std() + 1e-6) * PATCH_STD + PATCH_MEAN
    return normalised


def _blob(rng: np.random.Generator, centre: tuple[float, float], radius: float, hw: tuple[int, int]) -> np.ndarray:
    """A smooth star-shaped region (radius modulated by a few low harmonics) as HxW bool."""
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    r = np.ones_like(theta)
    for k in (2, 3, 4):
        r += rng.uniform(0.0, 0.18) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    stretch = rng.uniform(0.6, 1.0)
    angle = rng.uniform(0, np.pi)
    x = radius * r * np.cos(theta)
    y = radius * r * np.sin(theta) * stretch
    xr = centre[0] + x * np.cos(angle) - y * np.sin(angle)
    yr = centre[1] + x * np.sin(angle) + y * np.cos(angle)
    mask = np.zeros(hw, np.uint8)
    cv2.fillPoly(mask, [np.round(np.stack([xr, yr], 1)).astype(np.int32)], 1)
    return mask.astype(bool)


def make_image(
    rng: np.random.Generator, textures: dict[str, np.ndarray], size: int = 512, n_objects: tuple[int, int] = (3, 5)
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One image: (HxWx3 uint8 RGB, [HxW bool mask per object]); objects never touch."""
    names = list(textures)
    background = names[int(rng.integers(len(names)))]
    image = _patch(rng, textures[background], size)
    masks: list[np.ndarray] = []
    occupied = np.zeros((size, size), bool)
    wanted = int(rng.integers(n_objects[0], n_objects[1] + 1))
    for _ in range(200):
        if len(masks) == wanted:
            break
        radius = rng.uniform(0.07, 0.16) * size
        centre = tuple(rng.uniform(radius * 1.2, size - radius * 1.2, 2))
        mask = _blob(rng, centre, radius, (size, size))
        halo = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        if (halo & occupied).any() or mask.sum() < 400:
            continue
        other = [n for n in names if n != background]
        image[mask] = _patch(rng, textures[other[int(rng.integers(len(other)))]], size)[mask]
        occupied |= halo
        masks.append(mask)
    grey = np.clip(image, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2), masks


def write_texture_domain(
    out_dir: str | Path, n_images: int, seed: int = 0, size: int = 512, prefix: str = "texture"
) -> Path:
    """Write ``n_images`` PNGs and their exact masks as ``annotations.json`` (COCO, RLE) into ``out_dir``.

    Deterministic for a given seed. Returns the COCO file's path. Category: ``object``.
    """
    from PIL import Image

    from maskloop.masks import encode, measure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    textures = {name: _texture(name) for name in TEXTURES}
    images: list[dict] = []
    annotations: list[dict] = []
    for i in range(n_images):
        image, masks = make_image(rng, textures, size)
        file_name = f"{prefix}_{i:03d}.png"
        Image.fromarray(image).save(out / file_name)
        images.append({"id": i + 1, "file_name": file_name, "height": size, "width": size})
        for mask in masks:
            rle = encode(mask)
            area, bbox = measure(rle)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": 1,
                    "segmentation": rle,
                    "area": area,
                    "bbox": bbox,
                    "iscrowd": 0,
                }
            )
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "object"}]}
    path = out / "annotations.json"
    path.write_text(json.dumps(coco))
    return path
