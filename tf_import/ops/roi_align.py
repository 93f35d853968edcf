"""RoiAlign, channels-last, built as tensorpack builds it.

With sampling_ratio=2 (graphfix's default `--roialign tensorpack`): crop_and_resize to twice the output size, then
2x2 average pooling, on the feature map padded by one pixel (SYMMETRIC) — tensorpack's own construction, so the pb
holds TF's native CropAndResize. For a box [x0, x1] (feature coordinates, aligned: shifted by -0.5) at output size
S, the samples sit at x0 + w/(4S) + k w/(2S), k = 0..2S-1; in the padded map that is +1. crop_and_resize reads
0 outside the padded map, i.e. outside [-1, size] of the original one, and the padding makes [-1, 0) and
(size-1, size] read the border row, as onnxruntime's clamping does. Another fixed ratio r (a model's own
POOLER_SAMPLING_RATIO, which exact mode keeps) is the same at r times the output size and r x r pooling.

With sampling_ratio=0 (`--roialign exact`, detectron2's adaptive grid): each box has its own ceil(h/S) x ceil(w/S)
samples per bin, so no fixed-size crop covers all boxes. Each box is cropped at S*gy x S*gx samples (same padded
map and sample positions) and averaged per bin, one box per iteration of a tf.map_fn loop: the one place where a
d2tf pb holds control flow, because the sample count is data-dependent.

Unaligned RoiAlign (coordinate_transformation_mode=output_half_pixel: detectron2's ROIAlign v1, Detectron1's) is
the same sampling of boxes not shifted by -0.5 and at least one feature pixel wide and high.

TFLite has no CropAndResize builtin: for it, the same bilinear samples are gathered from the map (_gathered).
"""

import tensorflow as tf

from tf_import.ops import for_tflite, handles
from tf_import.translate import refuse
from tf_import.value import Value


@handles("RoiAlign", since=16)  # before 16, RoiAlign had no coordinate_transformation_mode: never aligned
def roi_align(node, inputs, attrs):
    x, rois, batch_indices = inputs
    transform = attrs.get("coordinate_transformation_mode", "half_pixel")
    if transform not in ("half_pixel", "output_half_pixel") or attrs.get("mode", "avg") != "avg":
        raise refuse(node, f"RoiAlign {attrs.get('mode', 'avg')} with coordinate_transformation_mode={transform}; "
                     "handled: avg, half_pixel or output_half_pixel")
    ratio = attrs.get("sampling_ratio", 0)
    if ratio == 0 and x.nhwc.shape[-1] is None:  # the loop's per-box result needs it, or no box could be stacked
        raise refuse(node, "channel count unknown at translation time (needed by sampling_ratio=0)")
    size = attrs.get("output_height", 1), attrs.get("output_width", 1)
    features = tf.pad(x.nhwc, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    boxes = rois.onnx * attrs.get("spatial_scale", 1.0)
    boxes = boxes - 0.5 if transform == "half_pixel" else _at_least_one_pixel(boxes)
    indices = tf.cast(batch_indices.onnx, tf.int32)
    pooled = _fixed(features, boxes, indices, size, ratio) if ratio else _adaptive(features, boxes, indices, size)
    return Value(pooled, nhwc=True)


def _at_least_one_pixel(boxes):
    x0, y0, x1, y1 = _corners(boxes)
    return tf.stack([x0, y0, x0 + tf.maximum(x1 - x0, 1.0), y0 + tf.maximum(y1 - y0, 1.0)], axis=-1)


def _corners(boxes):
    """x0, y0, x1, y1 of [N, 4] boxes, by slicing: TFLite's Unpack (tf.unstack) fails on an empty FPN level."""
    return (boxes[:, i] for i in range(4))


def _samples(features, boxes, indices, samples):
    """[N, ny, nx, C]: the padded map read bilinearly at `samples` = (ny, nx) points per box, where RoiAlign samples
    a box: evenly, half a step in from its edges (+1 for the pad); 0 outside the padded map."""
    if for_tflite():
        return _gathered(features, boxes, indices, samples)
    padded = tf.cast(tf.shape(features)[1:3], tf.float32) - 1
    x0, y0, x1, y1 = _corners(boxes)
    ny, nx = (tf.cast(n, tf.float32) for n in samples)
    step_y, step_x = (y1 - y0) / ny, (x1 - x0) / nx
    first_y, first_x = y0 + step_y / 2 + 1, x0 + step_x / 2 + 1
    last_y, last_x = first_y + (ny - 1) * step_y, first_x + (nx - 1) * step_x
    normalised = tf.stack([first_y / padded[0], first_x / padded[1], last_y / padded[0], last_x / padded[1]], axis=-1)
    return tf.image.crop_and_resize(features, normalised, indices, tf.stack(samples), method="bilinear",
                                    extrapolation_value=0.0)


def _gathered(features, boxes, indices, samples):
    """crop_and_resize's bilinear reading restated with builtin ops: the four neighbours of each sample gathered
    from the flattened map, blended as crop_and_resize blends them (x first, then y). New axes are ExpandDims: the
    converter leaves a StridedSlice that adds one as a TF op inside the exact mode's loop."""
    shape = tf.shape(features)
    height, width, channels = shape[1], shape[2], features.shape[-1] or shape[3]
    x0, y0, x1, y1 = _corners(boxes)
    top, bottom, y_lerp, y_inside = _taps(y0, y1, samples[0], height)
    left, right, x_lerp, x_inside = _taps(x0, x1, samples[1], width)
    flat = tf.reshape(features, [-1, channels])
    first = tf.expand_dims(indices, 1) * height

    def read(row, column):  # [N, ny, nx, C]
        return tf.gather(flat, tf.expand_dims((first + row) * width, 2) + tf.expand_dims(column, 1))

    x_lerp = tf.expand_dims(tf.expand_dims(x_lerp, 1), 3)
    upper, lower = ([read(row, column) for column in (left, right)] for row in (top, bottom))
    upper = upper[0] + (upper[1] - upper[0]) * x_lerp
    lower = lower[0] + (lower[1] - lower[0]) * x_lerp
    blended = upper + (lower - upper) * tf.expand_dims(tf.expand_dims(y_lerp, 2), 3)
    inside = tf.expand_dims(y_inside, 2) & tf.expand_dims(x_inside, 1)
    return blended * tf.expand_dims(tf.cast(inside, tf.float32), 3)


def _taps(start, end, count, size):
    """Along one axis of the padded map (`size` long): the sample positions' lower and upper neighbours (int32),
    the weight of the upper one, and whether a position is inside the map ([N, count] each)."""
    step = (end - start) / tf.cast(count, tf.float32)
    offsets = tf.expand_dims(tf.cast(tf.range(count), tf.float32) + 0.5, 0)
    position = tf.expand_dims(start, 1) + offsets * tf.expand_dims(step, 1) + 1
    lower = tf.floor(position)
    last = size - 1
    inside = (position >= 0) & (position <= tf.cast(last, tf.float32))
    low = tf.clip_by_value(tf.cast(lower, tf.int32), 0, last)
    return low, tf.minimum(low + 1, last), position - lower, inside


def _fixed(features, boxes, indices, size, ratio):
    """`ratio` x `ratio` samples per bin: the box sampled at `ratio` times the output size, averaged per bin."""
    crops = _samples(features, boxes, indices, (ratio * size[0], ratio * size[1]))
    if for_tflite():  # TFLite's XNNPACK average pool crashes on an empty batch (a level without boxes)
        return tf.add_n([crops[:, i::ratio, j::ratio] for i in range(ratio) for j in range(ratio)]) / ratio ** 2
    return tf.nn.avg_pool2d(crops, ratio, ratio, "VALID")


def _adaptive(features, boxes, indices, size):
    channels = features.shape[-1]

    def one_box(args):
        box, index = args
        height, width = box[3] - box[1], box[2] - box[0]
        grid = tf.cast(tf.math.ceil(tf.stack([height / size[0], width / size[1]])), tf.int32)
        grid_safe = tf.maximum(grid, 1)  # an empty box has no samples: onnxruntime then gives 0
        samples = (size[0] * grid_safe[0], size[1] * grid_safe[1])
        crop = _samples(features, box[None], index[None], samples)
        bins = tf.reshape(crop, [size[0], grid_safe[0], size[1], grid_safe[1], channels])
        return tf.reduce_mean(bins, axis=[1, 3]) * tf.cast(tf.reduce_all(grid > 0), tf.float32)

    return tf.map_fn(one_box, (boxes, indices), fn_output_signature=tf.TensorSpec([*size, channels], tf.float32),
                     parallel_iterations=16)
