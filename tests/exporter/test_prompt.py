"""``maskloop.prompt.Prompt``: SAM's ONNX prompt contract (padding point, box corners, frames)."""

from __future__ import annotations

import numpy as np
import pytest

from maskloop.prompt import Prompt, xy_image_to_model


def test_points_without_a_box_end_with_the_padding_point():
    prompt = Prompt((512, 1024), np.array([[100, 50], [10, 20]], np.float32), np.array([1, 0], np.float32))
    inputs = prompt.onnx_inputs(1024)
    assert inputs["point_coords"].shape == (1, 3, 2) and inputs["point_coords"].dtype == np.float32
    np.testing.assert_array_equal(inputs["point_coords"][0], [[100, 50], [10, 20], [0, 0]])
    np.testing.assert_array_equal(inputs["point_labels"][0], [1, 0, -1])
    assert inputs["has_mask_input"].tolist() == [0.0] and not inputs["mask_input"].any()
    np.testing.assert_array_equal(inputs["orig_im_size"], [512, 1024])


def test_a_box_follows_the_points_as_corners_2_and_3_without_padding():
    prompt = Prompt((1000, 500), np.array([[10, 10]], np.float32), np.array([1], np.float32), box_xyxy=[0, 0, 250, 500])
    coords, labels = prompt.point_inputs(1024)
    np.testing.assert_allclose(coords, [[10 * 512 / 500, 10 * 1024 / 1000], [0, 0], [256, 512]], rtol=1e-6)
    np.testing.assert_array_equal(labels, [1, 2, 3])
    box_only = Prompt((1000, 500), box_xyxy=[0, 0, 250, 500]).point_inputs(1024)
    np.testing.assert_array_equal(box_only[1], [2, 3])


def test_frames_and_mask_input():
    logits = np.ones((256, 256), np.float32)
    image = Prompt.from_arrays((300, 400), [[200, 150]], [1], mask_input=logits)
    model = image.to_model(1024)
    assert model.frame == "model" and model.to_model(1024) is model
    np.testing.assert_allclose(model.points_xy, xy_image_to_model([[200, 150]], (300, 400), 1024))
    np.testing.assert_array_equal(model.onnx_inputs(1024)["point_coords"], image.onnx_inputs(1024)["point_coords"])
    inputs = image.onnx_inputs(1024)
    assert inputs["mask_input"].shape == (1, 1, 256, 256) and inputs["has_mask_input"].tolist() == [1.0]
    with pytest.raises(ValueError, match="512 model frame"):
        Prompt((10, 10), frame="model", input_size=512, box_xyxy=[0, 0, 1, 1]).to_model(1024)


def test_malformed_prompts_say_what_is_wrong():
    with pytest.raises(ValueError, match="at least one point or a box"):
        Prompt((10, 10)).onnx_inputs(1024)
    with pytest.raises(ValueError, match="one label per point"):
        Prompt((10, 10), np.zeros((2, 2), np.float32), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="needs its input_size"):
        Prompt((10, 10), frame="model")
