"""tf_import/ops/non_max_suppression.py: NonMaxSuppression. Batch and class counts must be known (the handler
unrolls one NMS per pair), so these cases fix their input dims. The box head's NMS has a batch per class
(export/per_class_nms.py)."""

import numpy as np

from tests.tf_import.op_cases import INT64_MAX, handler_tests, ints, one_op

NMS_BOXES = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 2, 1, 3], [0, 2.05, 1, 3.05], [5, 5, 6, 6]]], np.float32)
NMS_SCORES = np.array([[[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.95, 0.3, 0.85, 0.2]]], np.float32)
NMS = {"boxes": NMS_BOXES, "scores": NMS_SCORES}
# Three batches of their own boxes, one class each: batch 1's boxes overlap where batch 0's do not.
NMS_BATCHES = {"boxes": np.concatenate([NMS_BOXES, NMS_BOXES[:, ::-1] * 0.5, NMS_BOXES + 1]),
               "scores": np.concatenate([NMS_SCORES[:, :1], NMS_SCORES[:, 1:], NMS_SCORES[:, :1] * 0.3])}
NMS_BOTH = {"boxes": NMS_BATCHES["boxes"][:2], "scores": np.concatenate([NMS_SCORES, NMS_SCORES[:, ::-1]])}
NO_BOXES = {"boxes": np.zeros((1, 0, 4), np.float32), "scores": np.zeros((1, 2, 0), np.float32)}
LIMITS = {"max": ints([2]), "iou": np.float32(0.5)}


def counts(batches, classes):
    return {"fixed": {"boxes": (batches, None, 4), "scores": (batches, classes, None)}}


CASES = [
    one_op("nms", "NonMaxSuppression", NMS, {"max": ints([2]), "iou": np.array([0.5], np.float32)}, **counts(1, 2)),
    one_op("nms_torchvision_limit", "NonMaxSuppression", NMS, {"max": ints([INT64_MAX]), "iou": np.float32(0.3)},
           **counts(1, 2)),
    one_op("nms_no_limit", "NonMaxSuppression", NMS, **counts(1, 2)),  # ONNX's default limit: 0 boxes
    one_op("nms_no_boxes", "NonMaxSuppression", NO_BOXES, {"max": ints([10]), "iou": np.float32(0.5)},
           **counts(1, 2)),
    one_op("nms_score_threshold", "NonMaxSuppression", NMS, {**LIMITS, "low": np.float32(0.75)}, **counts(1, 2)),
    one_op("nms_batches", "NonMaxSuppression", NMS_BATCHES,
           {"max": ints([3]), "iou": np.float32(0.1), "low": np.float32(0.2)}, **counts(3, 1)),
    one_op("nms_batches_and_classes", "NonMaxSuppression", NMS_BOTH,
           {"max": ints([INT64_MAX]), "iou": np.float32(0.5), "low": np.float32(0.0)}, **counts(2, 2)),
    one_op("nms_counts_unknown_refused", "NonMaxSuppression", NMS, LIMITS, refused="batch or class count unknown"),
    one_op("nms_center_point_box_refused", "NonMaxSuppression", NMS, LIMITS, center_point_box=1, **counts(1, 2),
           refused="center_point_box=1"),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
