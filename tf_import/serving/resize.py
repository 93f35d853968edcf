"""detectron2's test resize in TensorFlow, to the pixel: ResizeShortestEdge's output size, and the uint8 resize it
applies (ResizeTransform.apply_image: PIL's Image.resize with BILINEAR).

Pillow resizes an 8-bit image in two passes, horizontal then vertical, each rounding to uint8. Each output pixel is
a weighted sum of the input pixels under a triangle filter stretched by the scale when shrinking (so it averages
more than two pixels), the weights normalised, then rounded to integers of 22 fractional bits (libImaging/Resample.c:
precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleHorizontal_8bpc). Here each pass gathers every output's
taps and sums them in int32 the same way, so the result equals Pillow's exactly, not within a rounding.
"""

import tensorflow as tf

_PRECISION_BITS = 22  # Pillow's 32 - 8 - 2


def output_size(height, width, short_edge, max_size):
    """ResizeShortestEdge.get_output_shape (float64, as Python computes it): int32 (new height, new width)."""
    h, w = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    size = tf.cast(short_edge, tf.float64)
    scale = size / tf.minimum(h, w)
    new_h, new_w = tf.where(h < w, size, scale * h), tf.where(h < w, scale * w, size)
    longest = tf.maximum(new_h, new_w)
    shrink = tf.where(longest > max_size, max_size / longest, 1.0)  # x * 1.0 is x: unchanged unless capped
    new_h, new_w = new_h * shrink, new_w * shrink
    return tf.cast(tf.floor(new_h + 0.5), tf.int32), tf.cast(tf.floor(new_w + 0.5), tf.int32)


def resize_bilinear(image, new_height, new_width):
    """uint8 [H, W, C] -> uint8 [new_height, new_width, C], as Pillow's Image.resize(..., BILINEAR)."""
    horizontal = _resample_axis(image, 1, new_width)
    return _resample_axis(horizontal, 0, new_height)


def _resample_axis(image, axis, out_size):
    first, weights = _taps(tf.shape(image)[axis], out_size)
    gathered = tf.gather(tf.cast(image, tf.int32), first, axis=axis)  # the axis becomes [out_size, taps]
    shape = [1, 1, 1, 1]
    shape[axis], shape[axis + 1] = -1, tf.shape(weights)[1]
    total = tf.reduce_sum(gathered * tf.reshape(weights, tf.stack(shape)), axis=axis + 1)
    rounded = tf.bitwise.right_shift(total + (1 << (_PRECISION_BITS - 1)), _PRECISION_BITS)
    return tf.cast(tf.clip_by_value(rounded, 0, 255), tf.uint8)


def _taps(in_size, out_size):
    """(input index [out_size, taps] int32, integer weight [out_size, taps] int32) of each output pixel along one
    axis: precompute_coeffs and normalize_coeffs_8bpc, in float64 like Pillow's C (whose int casts truncate)."""
    in_f, out_f = tf.cast(in_size, tf.float64), tf.cast(out_size, tf.float64)
    scale = in_f / out_f
    filterscale = tf.maximum(scale, 1.0)
    support = filterscale  # the bilinear filter's support is 1
    taps = tf.cast(tf.math.ceil(support), tf.int32) * 2 + 1
    center = (tf.range(out_f) + 0.5) * scale
    first = tf.maximum(_truncate(center - support + 0.5), 0)
    count = tf.minimum(_truncate(center + support + 0.5), in_size) - first
    k = tf.range(taps)[None, :]
    index = first[:, None] + k
    weight = tf.nn.relu(1.0 - tf.abs((tf.cast(index, tf.float64) - center[:, None] + 0.5) * (1.0 / filterscale)))
    weight = tf.where(k < count[:, None], weight, 0.0)
    total = tf.reduce_sum(weight, axis=1, keepdims=True)
    weight = tf.math.divide_no_nan(weight, total)
    fixed = _truncate(0.5 + weight * (1 << _PRECISION_BITS))
    return tf.minimum(index, in_size - 1), fixed


def _truncate(x):
    """C's (int) cast of a double: toward zero."""
    return tf.cast(tf.where(x < 0, tf.math.ceil(x), tf.floor(x)), tf.int32)
