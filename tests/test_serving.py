"""The SavedModel's serving steps (tf_import/serving) against detectron2's own: its test resize to the pixel, its
detector_postprocess of boxes, its paste_masks_in_image. The TensorFlow side runs once, in
tests/children/serving_runner.py; the cases and detectron2's results are made here."""

import numpy as np
import pytest
import torch
from detectron2.data.transforms import ResizeShortestEdge
from detectron2.layers.mask_ops import paste_masks_in_image
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, Instances

from core.files import load_outputs, save_outputs
from tests.processes import CHILDREN, run_python
from tests.test_evaluate_restatements import TIE, paste_boxes, postprocess_boxes, probability_masks, random_limits


def _cases():
    rng = np.random.default_rng(0)
    cases = {}
    for i in range(40):  # shrinking and growing, capped by the long side, no resize (MIN_SIZE_TEST 0)
        image = rng.integers(0, 256, (*rng.integers(8, 300, 2), 3), dtype=np.uint8)
        limits = (0, 1333) if i % 10 == 0 else random_limits(rng, 8, 400)
        cases[f"resize{i}"] = {"image": image, "limits": np.array(limits)}
    for i in range(20):
        size, resized = rng.integers(20, 2000, 2), rng.integers(20, 1400, 2)
        cases[f"boxes{i}"] = {"boxes": postprocess_boxes(rng, 20, *resized), "resized": resized, "size": size}
    for i in range(20):
        size = rng.integers(16, 300, 2)
        boxes = paste_boxes(rng, *size)
        cases[f"paste{i}"] = {"boxes": boxes, "masks": probability_masks(rng, len(boxes)), "size": size}
    return cases


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(cases, TensorFlow's results) of every case."""
    directory = tmp_path_factory.mktemp("serving")
    cases = _cases()
    save_outputs(directory / "cases.npz", cases)
    result = run_python(f"{CHILDREN}/serving_runner.py", directory / "cases.npz", directory / "out.npz")
    assert result.returncode == 0, result.stderr[-3000:]
    return cases, load_outputs(directory / "out.npz")


def test_resize_is_detectron2s_to_the_pixel(served):
    cases, results = served
    shrunk = grown = 0
    for key, case in cases.items():
        if key.startswith("resize"):
            short, largest = (int(v) for v in case["limits"])
            expected = ResizeShortestEdge(short, largest).get_transform(case["image"]).apply_image(case["image"])
            np.testing.assert_array_equal(results[key]["image"], expected, err_msg=key)
            shrunk += expected.shape[0] < case["image"].shape[0]
            grown += expected.shape[0] > case["image"].shape[0]
    assert shrunk >= 10 and grown >= 10


def test_boxes_are_scaled_clipped_and_empty_ones_dropped_as_detectron2_does(served):
    cases, results = served
    kept = dropped = 0
    for key, case in cases.items():
        if key.startswith("boxes"):
            size, resized = tuple(int(v) for v in case["size"]), tuple(int(v) for v in case["resized"])
            boxes = torch.from_numpy(case["boxes"])
            instances = Instances(resized, pred_boxes=Boxes(boxes), index=torch.arange(len(boxes)))
            expected = detector_postprocess(instances, *size)
            keep = results[key]["keep"]
            np.testing.assert_array_equal(np.flatnonzero(keep), expected.index.numpy(), err_msg=key)
            np.testing.assert_array_equal(results[key]["boxes"][keep], expected.pred_boxes.tensor.numpy(),
                                          err_msg=key)
            kept, dropped = kept + keep.sum(), dropped + (~keep).sum()
    assert kept >= 100 and dropped >= 40


def test_masks_are_pasted_as_detectron2_pastes_them(served):
    """grid_sample adds its bilinear products in another order, so a pixel may differ only where detectron2's value
    is within TIE of the 0.5 threshold, and hardly any may."""
    cases, results = served
    differing = union = 0
    for key, case in cases.items():
        if key.startswith("paste"):
            size = tuple(int(v) for v in case["size"])

            def detectron2(threshold):
                return paste_masks_in_image(torch.from_numpy(case["masks"]), Boxes(torch.from_numpy(case["boxes"])),
                                            size, threshold).numpy()

            pasted = results[key]["masks"].astype(bool)
            expected, below_ties, above_ties = detectron2(0.5), detectron2(0.5 - TIE), detectron2(0.5 + TIE)
            assert not np.any(pasted & ~below_ties) and not np.any(above_ties & ~pasted), key
            differing += np.count_nonzero(pasted != expected)
            union += np.count_nonzero(pasted | expected)
    assert union > 100000 and differing <= 1e-4 * union, f"{differing} of {union} pixels differ"
