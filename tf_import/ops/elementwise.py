"""Elementwise ops. These are layout-free, so channels-last 4-D inputs stay channels-last (no transposes)."""

import numpy as np
import tensorflow as tf

from tf_import.ops import for_tflite, handles
from tf_import.translate import refuse
from tf_import.value import Value

_UNARY = {
    "Relu": tf.nn.relu,
    "Sigmoid": tf.math.sigmoid,
    "Exp": tf.math.exp,
    "Log": tf.math.log,
    "Sqrt": tf.math.sqrt,
    "Floor": tf.math.floor,
    "Not": tf.math.logical_not,
}
_BINARY = {
    "Add": tf.math.add,
    "Sub": tf.math.subtract,
    "Mul": tf.math.multiply,
    "Equal": tf.math.equal,
    "Greater": tf.math.greater,
    "Less": tf.math.less,
    "GreaterOrEqual": tf.math.greater_equal,
    "LessOrEqual": tf.math.less_equal,
    "And": tf.math.logical_and,
    "Or": tf.math.logical_or,
}


@handles(*_UNARY)
def unary(node, inputs, attrs):
    (x,) = inputs
    fn = _UNARY[node.op_type]
    return Value(fn(x.nhwc), nhwc=True) if x.held_nhwc else fn(x.onnx)


@handles(*_BINARY, "Div")
def binary(node, inputs, attrs):
    a, b = inputs
    if node.op_type == "Div":
        fn = tf.math.truediv if a.dtype.is_floating else truncating_divide
    else:
        fn = _BINARY[node.op_type]
    if a.held_nhwc or b.held_nhwc:
        pair = _channels_last_pair(a, b)
        if pair is not None:
            return Value(fn(*pair), nhwc=True)
    return fn(a.onnx, b.onnx)


def truncating_divide(a, b):
    """ONNX's integer Div, which truncates toward zero."""
    if not for_tflite():
        return tf.truncatediv(a, b)
    quotient = floor_divide(a, b)
    inexact_negative = tf.not_equal(a, quotient * b) & tf.not_equal(a < 0, b < 0)
    return quotient + tf.cast(inexact_negative, quotient.dtype)


def floor_divide(a, b):
    """Integer a // b. TFLite divides int32 only; ONNX's int64 here are shapes and counts, far below 2**31."""
    if not for_tflite() or a.dtype != tf.int64:
        return tf.math.floordiv(a, b)
    return tf.cast(tf.math.floordiv(tf.cast(a, tf.int32), tf.cast(b, tf.int32)), tf.int64)


def _channels_last_pair(a, b):
    """(a, b) channels-last when both are 4-D activations, or one is a constant broadcastable to NCHW."""
    held, other = (a, b) if a.held_nhwc else (b, a)
    if other.const is not None:
        const = np.asarray(other.const)
        if const.ndim < 4 and const.size == 1:
            converted = other.onnx
        elif const.ndim == 4:
            converted = tf.constant(const.transpose(0, 2, 3, 1))
        else:
            return None
    elif other.held_nhwc or other.onnx.shape.rank == 4:  # not .rank: an unknown one falls back to ONNX's layout
        converted = other.nhwc
    else:
        return None
    return (held.nhwc, converted) if held is a else (converted, held.nhwc)


@handles("Clip")
def clip(node, inputs, attrs):
    x, low, high = (inputs + [None, None])[:3]
    out = x.onnx
    if low is not None:
        out = tf.maximum(out, tf.cast(low.onnx, out.dtype))
    if high is not None:
        out = tf.minimum(out, tf.cast(high.onnx, out.dtype))
    return out


@handles("Where")
def where(node, inputs, attrs):
    cond, a, b = inputs
    return tf.where(cond.onnx, a.onnx, b.onnx)


_DTYPES = {
    1: tf.float32, 2: tf.uint8, 3: tf.int8, 5: tf.int16, 6: tf.int32, 7: tf.int64, 9: tf.bool, 10: tf.float16,
    11: tf.float64,
}


def tf_dtype(node, onnx_type):
    if onnx_type not in _DTYPES:
        raise refuse(node, f"ONNX element type {onnx_type}")
    return _DTYPES[onnx_type]


@handles("Cast")
def cast(node, inputs, attrs):
    (x,) = inputs
    dtype = tf_dtype(node, attrs["to"])  # float -> int truncates toward zero in both
    return Value(tf.cast(x.nhwc, dtype), nhwc=True) if x.held_nhwc else tf.cast(x.onnx, dtype)
