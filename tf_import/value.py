"""A translated ONNX value: a TF tensor, possibly held channels-last, possibly with a known constant value."""

import numpy as np
import tensorflow as tf

_TO_NHWC, _TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


class NotKnown(Exception):
    """A handler needed something of an input (`what`: its "value", "rank" or "length") at translation time, but
    only the run computes it. The Translator turns this into a refusal that names the node and the input, so
    handlers need no check of their own: they call known(), int_list() or rank and let it raise."""

    def __init__(self, value, what):
        super().__init__(what)
        self.value, self.what = value, what


class Value:
    """ONNX computes 4-D activations as NCHW; TF's CPU convolutions only take NHWC. A Value made by a
    channels-last handler (conv, pooling, RoIAlign) stays NHWC through layout-free ops (BN, ReLU, Add, ...), and is
    transposed at most once each way, when a layout-bound op (Reshape, Flatten, ...) first asks for the ONNX form."""

    def __init__(self, tensor, nhwc=False, const=None):
        self._onnx = None if nhwc else tensor
        self._nhwc = tensor if nhwc else None
        self.const = const  # ndarray when the value is known at translation time
        self._derived = {}

    @classmethod
    def constant(cls, array):
        """A known value. Its Const op is made only if a handler reads the tensor: a conv, for one, embeds its
        kernel already transposed, and an unread Const would double the pb's size."""
        return cls(None, const=np.asarray(array))

    @property
    def onnx(self):
        """The tensor in ONNX's layout."""
        if self._onnx is None:
            self._onnx = tf.constant(self.const) if self._nhwc is None else tf.transpose(self._nhwc, _TO_NCHW)
        return self._onnx

    @property
    def nhwc(self):
        """A 4-D value channels-last."""
        if self._nhwc is None:
            self._nhwc = tf.transpose(self._onnx, _TO_NHWC)
        return self._nhwc

    @property
    def held_nhwc(self):
        return self._nhwc is not None and self._onnx is None

    @property
    def dtype(self):
        if self.const is not None and self._onnx is None and self._nhwc is None:
            return tf.as_dtype(self.const.dtype)
        return (self._onnx if self._onnx is not None else self._nhwc).dtype

    @property
    def rank(self):
        if self.const is not None:
            return self.const.ndim
        rank = (self._onnx if self._onnx is not None else self._nhwc).shape.rank
        if rank is None:
            raise NotKnown(self, "rank")
        return rank

    def known(self):
        """The constant, for an input the handler must know at translation time (weights, axes, scales)."""
        if self.const is None:
            raise NotKnown(self, "value")
        return self.const

    def derived(self, key, make):
        """`make(constant)`, made once per `key` for this value: every node that reads a weight the same way shares
        its Consts (RetinaNet runs one head on five FPN levels; five copies of its kernels made the pb 244 MB where
        the ONNX is 145 MB)."""
        if key not in self._derived:
            self._derived[key] = make(self.known())
        return self._derived[key]

    def int_list(self):
        """The constant's values as Python ints (for axes, pads, sizes)."""
        return [int(v) for v in self.known().reshape(-1)]
