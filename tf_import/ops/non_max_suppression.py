"""NonMaxSuppression as TF's native non_max_suppression, one call per (batch, class), unrolled: a pb in tensorpack
mode holds no control flow. The box head's NMS has a batch per class (export/per_class_nms.py): 80 calls on COCO,
1203 on LVIS.

For TFLite, the padded form sliced to its valid count: the converter turns TF's unpadded NMS into TFLite's padded
NON_MAX_SUPPRESSION_V4 and drops the count, so the padding (box 0, repeated) would come out as detections."""

import numpy as np
import tensorflow as tf

from tf_import.ops import for_tflite, handles
from tf_import.translate import refuse


@handles("NonMaxSuppression")
def non_max_suppression(node, inputs, attrs):
    boxes, scores, max_per_class, iou, score_threshold = (inputs + [None] * 5)[:5]
    if attrs.get("center_point_box", 0):
        raise refuse(node, "center_point_box=1")
    num_batches, num_classes = boxes.onnx.shape[0], scores.onnx.shape[1]
    if num_batches is None or num_classes is None:
        raise refuse(node, "batch or class count unknown at translation time")
    limit = 0  # ONNX's default: no box selected
    if max_per_class is not None:  # torchvision exports INT64_MAX: clamp in int64 before TF's int32 argument
        count = tf.shape(boxes.onnx, out_type=tf.int64)[1]
        limit = tf.cast(tf.minimum(tf.reshape(max_per_class.onnx, []), count), tf.int32)
    threshold = tf.reshape(iou.onnx, []) if iou is not None else 0.0
    # ONNX and TF both keep scores strictly above it; without one, every box is a candidate.
    low = tf.reshape(score_threshold.onnx, []) if score_threshold is not None else float("-inf")
    selected = []
    for b in range(num_batches):
        for c in range(num_classes):
            # IoU is symmetric in x and y, so ONNX's [y1, x1, y2, x2] and torchvision's [x1, y1, x2, y2] agree.
            keep = _non_max_suppression(boxes.onnx[b], scores.onnx[b, c], limit, threshold, low)
            keep = tf.cast(keep, tf.int64)
            prefix = tf.tile(np.array([[b, c]], np.int64), tf.stack([tf.size(keep, out_type=tf.int64), 1]))
            selected.append(tf.concat([prefix, keep[:, None]], axis=1))
    return tf.concat(selected, axis=0) if len(selected) > 1 else selected[0]


def _non_max_suppression(boxes, scores, limit, threshold, low):
    if not for_tflite():
        return tf.image.non_max_suppression(boxes, scores, limit, threshold, low)
    padded, count = tf.raw_ops.NonMaxSuppressionV4(boxes=boxes, scores=scores, max_output_size=limit,
                                                   iou_threshold=threshold, score_threshold=low,
                                                   pad_to_max_output_size=True)
    return padded[:count]
