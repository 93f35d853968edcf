"""Conv and ConvTranspose, channels-last (the only layout TF's CPU kernels take)."""

import numpy as np
import tensorflow as tf

from tf_import.ops import for_tflite, handles
from tf_import.translate import refuse
from tf_import.value import Value


def _check_2d(node, inputs, attrs):
    if inputs[0].rank != 4:
        raise refuse(node, f"{inputs[0].rank}-D input; only 2-D convolutions are handled")
    if attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise refuse(node, f"auto_pad={attrs['auto_pad']}")


def _explicit_pads(attrs):
    top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
    return [[0, 0], [top, bottom], [left, right], [0, 0]]


@handles("Conv")
def conv(node, inputs, attrs):
    """A grouped Conv (ResNeXt) becomes one Conv2D per group on its slice of the channels, concatenated. TF's own
    grouped Conv2D runs on x86 only through oneDNN, fails once grappler fuses it with a BiasAdd ("Fused conv
    implementation does not support grouped convolutions"), and was slower here: 32 groups of X101-32x8d's 3x3
    convs took 250/110/41/34 ms natively against 178/68/35/29 ms split (res2..res5 at 800x1216, 2 cores)."""
    _check_2d(node, inputs, attrs)
    x, w, b = (inputs + [None])[:3]
    groups = attrs.get("group", 1)
    if w.known().shape[0] % groups:
        raise refuse(node, f"group={groups} does not divide the {w.known().shape[0]} output channels")
    # (out, in/groups, kh, kw) -> (kh, kw, in/groups, out), one Const per group
    kernels = w.derived(("conv", groups), lambda k: [tf.constant(part) for part in
                                                     np.split(np.transpose(k, (2, 3, 1, 0)), groups, axis=3)])
    strides, dilations = [1, *attrs.get("strides", [1, 1]), 1], [1, *attrs.get("dilations", [1, 1]), 1]
    data, padding = x.nhwc, _explicit_pads(attrs)
    if for_tflite():  # TFLite's convolutions pad only SAME or VALID, and need the input channels known
        if any(map(any, padding)):  # a Pad copies the activation: only where there is padding
            data = tf.pad(data, padding)
        if data.shape[-1] is None:  # the image, after the graph's own Pad to a multiple of 32
            dims = tf.unstack(tf.shape(data), num=4)
            data = tf.reshape(data, tf.stack([*dims[:3], kernels[0].shape[2] * groups]))
        padding = "VALID"
    slices = tf.split(data, groups, axis=3) if groups > 1 else [data]
    parts = [tf.nn.conv2d(part, k, strides=strides, padding=padding, dilations=dilations)
             for part, k in zip(slices, kernels)]
    y = tf.concat(parts, axis=3) if groups > 1 else parts[0]
    if b is not None:
        y = tf.nn.bias_add(y, b.onnx)
    return Value(y, nhwc=True)


@handles("ConvTranspose")
def conv_transpose(node, inputs, attrs):
    _check_2d(node, inputs, attrs)
    if attrs.get("group", 1) != 1:
        raise refuse(node, f"group={attrs['group']}")
    x, w, b = (inputs + [None])[:3]
    if any(attrs.get("output_padding", [0])) or "output_shape" in attrs:
        raise refuse(node, "output_padding or output_shape on a transposed convolution")
    if attrs.get("dilations", [1, 1]) != [1, 1]:
        raise refuse(node, f"dilations={attrs['dilations']}")
    sh, sw = attrs.get("strides", [1, 1])
    kernel = w.derived("conv_transpose", lambda k: tf.constant(np.transpose(k, (2, 3, 1, 0))))  # -> (kh, kw, out, in)
    kh, kw = kernel.shape[:2]
    shape = tf.shape(x.nhwc)
    out_shape = tf.stack([shape[0], (shape[1] - 1) * sh + kh, (shape[2] - 1) * sw + kw, kernel.shape[2]])
    y = tf.nn.conv2d_transpose(x.nhwc, kernel, out_shape, strides=[1, sh, sw, 1], padding="VALID")
    top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
    if any((top, left, bottom, right)):  # ONNX's pads take rows and columns off the full output (keypoint heads)
        y = y[:, top:tf.shape(y)[1] - bottom, left:tf.shape(y)[2] - right, :]
    if b is not None:
        y = tf.nn.bias_add(y, b.onnx)
    return Value(y, nhwc=True)


@handles("BatchNormalization")
def batch_normalization(node, inputs, attrs):
    """Inference BN as one multiply-add with per-channel constants (what the folded conv would compute)."""
    x, gamma, beta, mean, var = inputs
    if attrs.get("training_mode", 0):
        raise refuse(node, "training_mode=1")
    scale = gamma.known() / np.sqrt(var.known() + np.float32(attrs.get("epsilon", 1e-5)))
    shift = beta.known() - mean.known() * scale
    if x.rank == 4:
        return Value(x.nhwc * scale.astype(np.float32) + shift.astype(np.float32), nhwc=True)
    shape = [-1] + [1] * (x.rank - 2)
    return x.onnx * scale.reshape(shape).astype(np.float32) + shift.reshape(shape).astype(np.float32)
