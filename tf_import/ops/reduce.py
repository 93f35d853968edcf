"""Reductions and ranking: ReduceMax, Softmax, TopK."""

import tensorflow as tf

from tf_import.ops import handles
from tf_import.ops.shape import axes_argument
from tf_import.translate import refuse
from tf_import.value import Value

_REDUCE = {"ReduceMax": tf.reduce_max, "ReduceMean": tf.reduce_mean, "ReduceSum": tf.reduce_sum}


@handles(*_REDUCE)
def reduce(node, inputs, attrs):
    """Reductions; an empty input gives -inf for ReduceMax as in onnxruntime (graphfix's nms pass relies on it).
    Pooling a channels-last map over H and W (C4's box head) reduces it as it is held. ReduceSum takes its axes
    as an input since opset 13 (the others since 18, past tf_import's opsets)."""
    x, axes = inputs[0], axes_argument(inputs, attrs)
    fn, keepdims = _REDUCE[node.op_type], bool(attrs.get("keepdims", 1))
    if not axes:  # none given, or an empty axes input: all axes, unless told to do nothing
        if attrs.get("noop_with_empty_axes", 0):
            return x
        axes = None
    if x.held_nhwc and axes is not None and sorted(a % 4 for a in axes) == [2, 3]:
        y = fn(x.nhwc, axis=[1, 2], keepdims=keepdims)
        return Value(y, nhwc=True) if keepdims else y  # [N, C] is the same in both layouts
    return fn(x.onnx, axis=axes, keepdims=keepdims)


@handles("Softmax", since=13)  # before 13, Softmax flattened its input to 2-D around `axis` (default 1)
def softmax(node, inputs, attrs):
    (x,) = inputs
    return tf.nn.softmax(x.onnx, axis=attrs.get("axis", -1))


@handles("TopK")
def top_k(node, inputs, attrs):
    x, k = inputs
    if not attrs.get("largest", 1) or not attrs.get("sorted", 1):
        raise refuse(node, "smallest-k or unsorted TopK")
    rank = x.rank
    axis = attrs.get("axis", -1)
    axis = axis + rank if axis < 0 else axis
    data = x.onnx
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    if axis != rank - 1:
        data = tf.transpose(data, perm)
    # Ties keep the lower index first in both TF and onnxruntime.
    values, indices = tf.math.top_k(data, k=tf.cast(tf.reshape(k.onnx, []), tf.int32), sorted=True)
    indices = tf.cast(indices, tf.int64)
    if axis != rank - 1:
        values, indices = tf.transpose(values, perm), tf.transpose(indices, perm)
    return values, indices
