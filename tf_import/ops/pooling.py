"""MaxPool and Resize (nearest and bilinear upsampling), channels-last."""

import numpy as np
import tensorflow as tf

from tf_import.ops import handles
from tf_import.translate import refuse
from tf_import.value import Value


@handles("MaxPool")
def max_pool(node, inputs, attrs):
    (x,) = inputs
    if len(node.output) > 1 or attrs.get("ceil_mode", 0) or attrs.get("dilations", [1, 1]) != [1, 1]:
        raise refuse(node, "indices output, ceil_mode or dilations")
    if attrs.get("auto_pad", "NOTSET") != "NOTSET" or x.rank != 4:
        raise refuse(node, "auto_pad or non-2-D pooling")
    top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
    y = x.nhwc
    if any((top, left, bottom, right)):
        y = tf.pad(y, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=-np.inf)
    return Value(tf.nn.max_pool2d(y, attrs["kernel_shape"], [1, *attrs.get("strides", [1, 1]), 1], "VALID"), nhwc=True)


@handles("Resize")
def resize(node, inputs, attrs):
    """Upsampling by integer factors: nearest-neighbour (FPN's top-down path), exactly a repeat of each pixel; or
    bilinear with half-pixel centres (the semantic FPN head's)."""
    x, _roi, scales, sizes = (inputs + [None] * 4)[:4]
    mode = attrs.get("mode", "nearest")
    if mode not in ("nearest", "linear") or x.rank != 4:
        raise refuse(node, f"mode={mode}; only nearest and linear 2-D resizing are handled")
    if sizes is not None or scales is None:
        raise refuse(node, "resizing to sizes; only scales are handled")
    factors = scales.known()
    if list(factors[:2]) != [1, 1] or any(f != int(f) or f < 1 for f in factors[2:]):
        raise refuse(node, f"scales {factors.tolist()}; only integer upsampling of H and W")
    if mode == "linear":
        return _bilinear(node, x, [int(f) for f in factors[2:]], attrs)
    if attrs.get("coordinate_transformation_mode", "half_pixel") != "asymmetric" or \
            attrs.get("nearest_mode", "round_prefer_floor") != "floor":
        raise refuse(node, "nearest resizing other than asymmetric/floor (the one integer upsampling repeats)")
    y = x.nhwc
    for axis, factor in ((1, int(factors[2])), (2, int(factors[3]))):
        y = tf.repeat(y, factor, axis=axis)
    return Value(y, nhwc=True)


def _bilinear(node, x, factors, attrs):
    """TF's ResizeBilinear with half-pixel centres samples where ONNX's half_pixel linear Resize does, (out + 0.5) /
    factor - 0.5 clamped to the image, and blends the same two neighbours by the same weights. TF computes the
    scale as in / out, which is exactly 1 / factor only for powers of two."""
    if attrs.get("coordinate_transformation_mode", "half_pixel") != "half_pixel":
        raise refuse(node, "linear resizing other than half_pixel")
    if any(f & (f - 1) for f in factors):
        raise refuse(node, f"linear upsampling by {factors}; only powers of two, whose scale TF computes exactly")
    y = x.nhwc
    size = tf.shape(y)[1:3] * tf.constant(factors, tf.int32)
    return Value(tf.compat.v1.image.resize_bilinear(y, size, half_pixel_centers=True), nhwc=True)


@handles("Pad")
def pad(node, inputs, attrs):
    x, pads, value = (inputs + [None, None])[:3]
    if attrs.get("mode", "constant") != "constant" or len(inputs) > 3:
        raise refuse(node, f"mode={attrs.get('mode')} or axes input")
    rank = x.rank
    begin_end = tf.reshape(tf.cast(pads.onnx, tf.int64), [2, rank])
    fill = tf.reshape(value.onnx, []) if value is not None else 0
    if pads.const is not None and (np.asarray(pads.const) < 0).any():
        raise refuse(node, "negative pads")
    return tf.pad(x.onnx, tf.transpose(begin_end), constant_values=fill)
