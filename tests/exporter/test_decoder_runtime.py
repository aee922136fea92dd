"""The Python runner of the browser's decoder agrees with SAM's own predictor."""

from __future__ import annotations

import numpy as np
import pytest

from maskloop.exporter.decoder_runtime import OnnxDecoder, preprocess_shape
from maskloop.exporter.onnx_export import ensure_decoder
from maskloop.masks import mask_iou


@pytest.fixture(scope="module")
def browser_decoder(tmp_path_factory, default_model):
    out = tmp_path_factory.mktemp("browser_decoder")
    manifest = ensure_decoder("vit_t", None, out, model=default_model)
    assert manifest["variant"] == "lowres" and manifest["embedding"]["dtype"] == "float16"
    again = ensure_decoder("vit_t", None, out)  # reused, not exported again
    assert again["created"] == manifest["created"]
    return out


def test_preprocess_shape_rounds_like_sam():
    assert preprocess_shape(300, 451, 1024) == (681, 1024)
    assert preprocess_shape(2000, 3000, 1024) == (683, 1024)


@pytest.mark.parametrize("name", ["chelsea.jpg", "astronaut.jpg"])
def test_matches_sam_predictor(browser_decoder, default_model, photos, photo_embeddings, name):
    import torch
    from segment_anything import SamPredictor

    image = photos[name]
    h, w = image.shape[:2]
    predictor = SamPredictor(default_model)
    predictor.features = torch.from_numpy(photo_embeddings[name].astype(np.float16).astype(np.float32))
    predictor.original_size = (h, w)
    predictor.input_size = preprocess_shape(h, w, 1024)
    predictor.is_image_set = True
    decoder = OnnxDecoder(browser_decoder)
    point, box = np.array([[w * 0.5, h * 0.5]]), np.array([w * 0.2, h * 0.2, w * 0.8, h * 0.9])
    cases = [
        (point, np.array([1]), None),
        (None, None, box),
        (np.array([[w * 0.5, h * 0.5], [w * 0.1, h * 0.1]]), np.array([1, 0]), box),
    ]
    for pts, labels, bx in cases:
        ours = decoder.predict(photo_embeddings[name], (h, w), pts, labels, bx)
        ref_masks, ref_iou, _ = predictor.predict(point_coords=pts, point_labels=labels, box=bx, multimask_output=True)
        for j in range(3):
            assert mask_iou(ours.masks[1 + j], ref_masks[j]) >= 0.99
        assert np.allclose(ours.iou[1:], ref_iou, atol=1e-2)


def test_split_decoder_gives_the_single_graphs_logits_with_one_prefix_run_per_image(browser_decoder, photo_embeddings):
    """``OnnxDecoder(split=True)`` (the server's decode endpoint) runs the page's prefix + prompt
    graphs: the single graph's logits and IoUs, the prefix run once per image key (a few kept)."""
    single = OnnxDecoder(browser_decoder)
    split = OnnxDecoder(browser_decoder, split=True)
    assert single.prefix is None and split.prefix is not None
    assert OnnxDecoder(browser_decoder, "int8", split=True).prefix is None  # the pair is fp32 only
    embedding = photo_embeddings["chelsea.jpg"]
    hw = (300, 451)
    point, labels = np.array([[250.0, 150.0]]), np.array([1])
    first = split.predict_low_res(embedding, hw, point, labels, image_key="chelsea")
    side = split._image_sides["chelsea"]
    cases = [
        (point, labels, None, None),
        (None, None, np.array([60.0, 40.0, 400.0, 280.0]), None),
        (np.array([[250.0, 150.0], [320.0, 220.0]]), np.array([1, 0]), None, first[0][1]),
    ]
    for pts, lab, box, mask_input in cases:
        want = single.predict_low_res(embedding, hw, pts, lab, box, mask_input)
        got = split.predict_low_res(embedding, hw, pts, lab, box, mask_input, image_key="chelsea")
        assert np.allclose(got[0], want[0], atol=1e-3) and np.allclose(got[1], want[1], atol=1e-4)
        assert ((got[0] > 0) == (want[0] > 0)).mean() > 0.9999
    assert split._image_sides["chelsea"] is side  # the prefix did not run again for this image
    for k in range(OnnxDecoder.PREFIXES_KEPT + 1):
        split.predict_low_res(embedding, hw, point, labels, image_key=f"other{k}")
    assert list(split._image_sides) == [f"other{k + 1}" for k in range(OnnxDecoder.PREFIXES_KEPT)]
