"""RoiAlign, channels-last, built as tensorpack builds it.

With sampling_ratio=2 (graphfix's default `--roialign tensorpack`): crop_and_resize to twice the output size, then
2x2 average pooling, on the feature map padded by one pixel (SYMMETRIC) — tensorpack's own construction, so the pb
holds TF's native CropAndResize. For a box [x0, x1] (feature coordinates, aligned: shifted by -0.5) at output size
S, the samples sit at x0 + w/(4S) - 0.5 + k w/(2S), k = 0..2S-1; in the padded map that is +1. crop_and_resize reads
0 outside the padded map, i.e. outside [-1, size] of the original one, and the padding makes [-1, 0) and
(size-1, size] read the border row, as onnxruntime's clamping does.
"""

import tensorflow as tf

from tf_import.ops import handles
from tf_import.translate import refuse
from tf_import.value import Value


@handles("RoiAlign")
def roi_align(node, inputs, attrs):
    x, rois, batch_indices = inputs
    if attrs.get("coordinate_transformation_mode", "half_pixel") != "half_pixel" or attrs.get("mode", "avg") != "avg":
        raise refuse(node, "RoiAlign other than aligned (half_pixel) averaging")
    if attrs.get("sampling_ratio", 0) != 2:
        raise refuse(node, f"sampling_ratio={attrs.get('sampling_ratio', 0)}; only 2 (tensorpack semantics, "
                     "graphfix --roialign tensorpack) has a TF translation so far")
    size_h, size_w = attrs.get("output_height", 1), attrs.get("output_width", 1)
    scale = attrs.get("spatial_scale", 1.0)
    features = tf.pad(x.nhwc, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    padded = tf.cast(tf.shape(features)[1:3], tf.float32)
    x0, y0, x1, y1 = tf.unstack(rois.onnx * scale, axis=1)
    first_y, step_y = y0 + (y1 - y0) / (4 * size_h) + 0.5, (y1 - y0) / (2 * size_h)
    first_x, step_x = x0 + (x1 - x0) / (4 * size_w) + 0.5, (x1 - x0) / (2 * size_w)
    last_y, last_x = first_y + (2 * size_h - 1) * step_y, first_x + (2 * size_w - 1) * step_x
    boxes = tf.stack([first_y / (padded[0] - 1), first_x / (padded[1] - 1),
                      last_y / (padded[0] - 1), last_x / (padded[1] - 1)], axis=1)
    crops = tf.image.crop_and_resize(features, boxes, tf.cast(batch_indices.onnx, tf.int32),
                                     [2 * size_h, 2 * size_w], method="bilinear", extrapolation_value=0.0)
    return Value(tf.nn.avg_pool2d(crops, 2, 2, "VALID"), nhwc=True)
