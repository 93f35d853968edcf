"""core/contract.py's decoders, which verify and the runners use to read the converted models' outputs, on literal
inputs worked out by hand."""

import numpy as np

from core import contract


def test_serving_outputs_decode_to_pixels_x1y1x2y2_and_0_based_classes():
    """A 40x80 image (height 40, width 80): detection_boxes are ymin, xmin, ymax, xmax over height and width."""
    outputs = {"num_detections": np.float32([2]),
               "detection_boxes": np.float32([[[0.25, 0.5, 0.75, 1.0], [0.0, 0.0, 0.5, 0.125]]]),
               "detection_scores": np.float32([[0.9, 0.4]]),
               "detection_classes": np.float32([[1.0, 7.0]]),
               "detection_masks": np.zeros((1, 2, 40, 80), np.uint8)}
    got = contract.serving_to_detections(outputs, 40, 80)
    assert got["boxes"].tolist() == [[40.0, 10.0, 80.0, 30.0], [0.0, 0.0, 10.0, 20.0]]
    assert got["scores"].tolist() == np.float32([0.9, 0.4]).tolist()
    assert got["classes"].tolist() == [0, 6] and got["classes"].dtype == np.int64
    assert got["masks"].shape == (2, 40, 80)
    assert "masks" not in contract.serving_to_detections({k: v for k, v in outputs.items() if k != "detection_masks"},
                                                         40, 80)


def test_pb_labels_are_1_based_classes():
    got = contract.labels_to_classes({"boxes": np.zeros((2, 4)), "labels": np.int64([1, 80])})
    assert got["classes"].tolist() == [0, 79] and "labels" not in got


def test_an_rpns_proposals_compare_as_detections_of_one_class():
    got = contract.as_detections({"proposals": np.float32([[0, 0, 4, 4]]), "objectness": np.float32([2.5])})
    assert got["boxes"].tolist() == [[0, 0, 4, 4]] and got["scores"].tolist() == [2.5]
    assert got["classes"].tolist() == [0] and got["classes"].dtype == np.int64


def test_a_two_stage_detectors_outputs_compare_as_its_detections():
    outputs = {"boxes": np.float32([[0, 0, 4, 4]]), "scores": np.float32([0.9]), "classes": np.int64([3]),
               "proposals": np.float32([[1, 1, 5, 5], [0, 0, 2, 2]]), "objectness": np.float32([2.5, 1.0])}
    assert contract.as_detections(outputs) is outputs
    got = contract.proposals_as_detections(outputs)
    assert got["boxes"].tolist() == [[1, 1, 5, 5], [0, 0, 2, 2]] and got["classes"].tolist() == [0, 0]


def test_outputs_by_meta_architecture():
    rpn = ["proposals", "objectness"]
    assert contract.onnx_outputs() == ["boxes", "scores", "classes", *rpn]
    assert contract.onnx_outputs(mask=True, keypoints=True) == ["boxes", "scores", "classes", "masks", "keypoints",
                                                                *rpn]
    assert contract.onnx_outputs("PanopticFPN", mask=True) == ["boxes", "scores", "classes", "masks", "sem_seg",
                                                               *rpn]
    assert contract.onnx_outputs("RetinaNet") == ["boxes", "scores", "classes"]
    assert contract.onnx_outputs("ProposalNetwork") == rpn
    assert contract.onnx_outputs("SemanticSegmentor") == ["sem_seg"]
    assert contract.pb_outputs(["boxes", "classes", "masks", *rpn]) == ["boxes", "labels", "masks", *rpn]
    assert contract.beyond_detections(["boxes", "scores", "classes", "masks", "keypoints", *rpn]) == ["keypoints"]
    assert contract.beyond_detections(["boxes", "scores", "classes", "masks", *rpn]) == []
    assert contract.beyond_detections(rpn) == rpn
    assert contract.served_outputs(["boxes", "scores", "classes", "masks", *rpn]) == ["boxes", "scores", "classes",
                                                                                       "masks"]
    assert (contract.mask_resolution("C4", 14), contract.mask_resolution("FPN", 14)) == (14, 28)
