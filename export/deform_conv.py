"""detectron2's deformable convolution (DeformConv: one offset group, no modulation), restated for the trace in ops
that ONNX, TensorFlow and TFLite all have: Gather, Floor, arithmetic and MatMul.

On CPU detectron2 computes it with torchvision's deform_conv2d, which has no ONNX form below opset 19 and none in
TensorFlow. It samples the input at each output position's kernel taps moved by the learnt offsets, bilinearly,
an input pixel outside the map counting as 0 (a tap more than a pixel outside gives 0), then multiplies the sampled
columns by the weights as a convolution's im2col does. This is the same computation in the same order: the four
corners weighted and added as torchvision adds them, then one matrix product per group."""

import torch
from torch.nn.modules.utils import _pair


def deform_conv(x, offset, weight, stride=1, padding=0, dilation=1, groups=1, deformable_groups=1, im2col_step=64):
    """detectron2.layers.deform_conv.deform_conv's signature and result, for one image (export traces one)."""
    if deformable_groups != 1 or x.shape[0] != 1:
        raise ValueError("the traced deformable convolution takes one image and one offset group")
    (stride_h, stride_w), (pad_h, pad_w), (dilation_h, dilation_w) = _pair(stride), _pair(padding), _pair(dilation)
    out_channels, _, kernel_h, kernel_w = weight.shape
    channels, height, width = x.shape[1:]
    out_h, out_w = offset.shape[2:]
    taps = kernel_h * kernel_w
    # where each tap of each output position reads before its offset: [taps, out_h, out_w]
    tap_y = torch.arange(kernel_h).repeat_interleave(kernel_w) * dilation_h
    tap_x = torch.arange(kernel_w).repeat(kernel_h) * dilation_w
    offset = offset[0].reshape(taps, 2, out_h, out_w)  # (dy, dx) per tap, as torchvision orders them
    y = (torch.arange(out_h) * stride_h - pad_h)[None, :, None] + tap_y[:, None, None] + offset[:, 0]
    x_ = (torch.arange(out_w) * stride_w - pad_w)[None, None, :] + tap_x[:, None, None] + offset[:, 1]
    columns = _bilinear(x[0].reshape(channels, height * width), y, x_, height, width)  # [C, taps, out_h, out_w]
    columns = columns.reshape(groups, channels // groups * taps, out_h * out_w)
    out = torch.matmul(weight.reshape(groups, out_channels // groups, -1), columns)
    return out.reshape(1, out_channels, out_h, out_w)


def _bilinear(flat, y, x, height, width):
    """[C, *y.shape]: `flat` ([C, height * width]) sampled at (y, x); 0 where a point is a pixel or more outside the
    map, and each corner outside it 0."""
    inside = (y > -1) & (y < height) & (x > -1) & (x < width)
    y_low, x_low = torch.floor(y), torch.floor(x)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    total = None
    for dy, dx, weight in ((0, 0, hy * hx), (0, 1, hy * lx), (1, 0, ly * hx), (1, 1, ly * lx)):
        row, col = y_low + dy, x_low + dx
        valid = inside & (row >= 0) & (row <= height - 1) & (col >= 0) & (col <= width - 1)
        index = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1)).to(torch.int64)
        value = flat[:, index.reshape(-1)].reshape(flat.shape[0], *y.shape) * torch.where(valid, weight, 0.0)
        total = value if total is None else total + value
    return total
