"""Gemm: the fully connected layers of the box heads; MatMul: the deformable convolution's columns times its
weights (export/deform_conv.py)."""

import numpy as np
import tensorflow as tf

from tf_import.ops import handles
from tf_import.translate import refuse


@handles("Gemm")
def gemm(node, inputs, attrs):
    a, b, c = (inputs + [None])[:3]
    if attrs.get("transA", 0):
        raise refuse(node, "transA=1")
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    trans_b = attrs.get("transB", 0)
    if b.const is not None:  # weights: stored already transposed, no run-time Transpose
        right = tf.constant(np.ascontiguousarray(b.const.T if trans_b else b.const))
    else:
        right = tf.transpose(b.onnx) if trans_b else b.onnx
    y = tf.linalg.matmul(a.onnx, right)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c.onnx * beta if beta != 1.0 else c.onnx)
    return y


@handles("MatMul")
def matmul(node, inputs, attrs):
    a, b = inputs
    if a.onnx.shape.rank is None or b.onnx.shape.rank is None or min(a.onnx.shape.rank, b.onnx.shape.rank) < 2:
        raise refuse(node, "an operand of unknown rank or a vector (numpy's matmul promotes vectors; TF's does not)")
    return tf.linalg.matmul(a.onnx, b.onnx)  # batch dims broadcast, as ONNX's do
