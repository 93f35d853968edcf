"""Gemm: the fully connected layers of the box heads."""

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
    weights = b.const.T if attrs.get("transB", 0) and b.const is not None else None
    right = tf.constant(np.ascontiguousarray(weights)) if weights is not None else \
        (tf.transpose(b.onnx) if attrs.get("transB", 0) else b.onnx)
    y = tf.linalg.matmul(a.onnx, right)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c.onnx * beta if beta != 1.0 else c.onnx)
    return y
