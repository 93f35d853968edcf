"""Indexing ops: Gather, GatherND, ScatterND, NonZero, OneHot."""

import tensorflow as tf

from tf_import.ops import for_tflite, handles
from tf_import.translate import refuse


def _wrap_negative(indices, dims):
    """ONNX indices may count from the end (of `dims`, broadcast along the last axis); TF's gathers do not."""
    indices = tf.cast(indices, tf.int64)
    return tf.where(indices < 0, indices + tf.cast(dims, tf.int64), indices)


def _wrap_negative_nd(indices, data, batch_dims=0):
    """GatherND/ScatterND index tuples: the last axis of `indices` indexes data's dims from `batch_dims` on. The
    shape is int64, as a ConstantOfShape's dims are: TFLite's converter folds Shape(Fill(dims)) to dims whatever
    type the Shape asked for."""
    depth = tf.shape(indices)[-1]
    return _wrap_negative(indices, tf.shape(data, out_type=tf.int64)[batch_dims:batch_dims + depth])


@handles("Gather")
def gather(node, inputs, attrs):
    data, indices = inputs
    axis = attrs.get("axis", 0)
    axis = axis + data.rank if axis < 0 else axis
    dim = tf.shape(data.onnx, out_type=tf.int64)[axis]
    return tf.gather(data.onnx, _wrap_negative(indices.onnx, dim), axis=axis)


@handles("GatherND")
def gather_nd(node, inputs, attrs):
    data, indices = inputs
    batch_dims = attrs.get("batch_dims", 0)
    return tf.gather_nd(data.onnx, _wrap_negative_nd(indices.onnx, data.onnx, batch_dims), batch_dims=batch_dims)


@handles("ScatterND")
def scatter_nd(node, inputs, attrs):
    data, indices, updates = inputs
    if attrs.get("reduction", "none") != "none":
        raise refuse(node, f"reduction={attrs['reduction']}")
    indices = _wrap_negative_nd(indices.onnx, data.onnx)
    if for_tflite():
        return _scatter_by_select(node, data.onnx, indices, updates.onnx)
    return tf.tensor_scatter_nd_update(data.onnx, indices, updates.onnx)


def _scatter_by_select(node, data, indices, updates):
    """ScatterND as a select between data and scatter_nd(updates). TFLite's form of tensor_scatter_nd_update
    broadcasts to the updates' shape, which crashes when they are empty (an FPN level without boxes). ONNX leaves
    repeated indices undefined, so which update a repeat keeps does not matter."""
    depth = indices.shape[-1]
    if depth is None:
        raise refuse(node, "index depth unknown at translation time (needed for TFLite)")
    data_shape = tf.shape(data, out_type=indices.dtype)
    written = tf.scatter_nd(indices, tf.ones(tf.shape(indices)[:-1], tf.int32), data_shape[:depth]) > 0
    written = tf.reshape(written, tf.concat([data_shape[:depth], tf.ones([data.shape.rank - depth], indices.dtype)], 0))
    return tf.where(written, tf.scatter_nd(indices, updates, data_shape), data)


@handles("NonZero")
def non_zero(node, inputs, attrs):
    (x,) = inputs
    return tf.transpose(tf.where(tf.not_equal(x.onnx, tf.zeros([], x.onnx.dtype))))  # [rank, count], int64


@handles("OneHot")
def one_hot(node, inputs, attrs):
    indices, depth, values = inputs
    depth = tf.cast(tf.reshape(depth.onnx, []), tf.int64)
    indices = _wrap_negative(indices.onnx, depth)
    off, on = values.onnx[0], values.onnx[1]
    return tf.one_hot(indices, tf.cast(depth, tf.int32), on_value=on, off_value=off, axis=attrs.get("axis", -1))
