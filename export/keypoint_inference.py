"""detectron2's heatmaps_to_keypoints, restated for export: x, y and logits bit for bit, scores to round-off.

detectron2 resizes each box's K heatmaps (56x56) bicubically to ceil(height) x ceil(width) and takes the argmax.
An inexact resize flips an argmax to a neighbouring pixel about once per 100 instances, so the resize is written
as PyTorch's CPU kernel (UpSampleKernel.cpp, upsample_bicubic2d, float32) computes it, op for op:
  - per output index o: real = fma(in / out, o + 0.5, -0.5); i = min(floor(real), in - 1); t = clamp(real - i, 0,
    1); source indices clamp(i - 1 + j, 0, in - 1), j = 0..3;
  - weights cc2(t + 1), cc1(t), cc1(1 - t), cc2(2 - t), A = -0.75, with cc1(x) = fma(A + 2, x, -(A + 3)) * x * x + 1
    and cc2(x) = fma(fma(A, x, -5A), x, 8A) * x - 4A;
  - values along x, then along y, each fma(t3, w3, fma(t2, w2, fma(t0, w0, t1 * w1))).
The fused multiply-adds are those the AVX2 and AVX-512 builds of that kernel compute (PyTorch's x86 wheels); a fused
a * b + c is computed in float64 and rounded once to float32, which the exact product makes equal to an FMA but for
float64 sums that round onto a float32 tie (about 2^-29 of them).

The x pass runs on all 56 source rows ([K, 56, W]) and the y pass gathers 4 of its rows per output row: the kernel's
numbers at K*H*W floats per box. Boxes have different sizes, so they go one by one through a scripted loop (an ONNX
Loop). The argmax is TopK(1) (the first index on ties, as argmax); x and y come from it by integer division (no Mod
handler), ceil is 0 - floor(0 - x). The score at the argmax is detectron2's exp(0) over the sum of exp(maps - max).
"""

import torch


def _fma(a, b, c):
    """a * b + c rounded once (AVX2 / AVX512 builds); for a DEFAULT build, replace by a * b + c."""
    return (a.double() * b.double() + c.double()).float()


def _cc1(x, a: float):
    return _fma(torch.full_like(x, a + 2.0), x, torch.full_like(x, -(a + 3.0))) * x * x + 1.0


def _cc2(x, a: float):
    t = _fma(torch.full_like(x, a), x, torch.full_like(x, -5.0 * a))
    t = _fma(t, x, torch.full_like(x, 8.0 * a))
    return t * x - 4.0 * a


def _sum4(t0, t1, t2, t3, w0, w1, w2, w3):
    return _fma(t3, w3, _fma(t2, w2, _fma(t0, w0, t1 * w1)))


def _indices_weights(in_size: int, out_size_f, out_size: int):
    """Source indices [4][out] (int64) and weights [4][out] (float32) of one resized axis. out_size_f: the output
    size as a float32 tensor (ceil of the box side), out_size: the same as an int."""
    in_f = torch.full_like(out_size_f, float(in_size))
    scale = in_f / out_size_f  # float32 division, as the kernel's float(in) / out
    dst = torch.arange(out_size, dtype=torch.float32)
    real = _fma(scale.expand(out_size), dst + 0.5, torch.full_like(dst, -0.5))
    lower = torch.clamp(torch.floor(real), max=float(in_size - 1))
    lam = torch.clamp(real - lower, 0.0, 1.0)
    one_minus = torch.ones_like(lam) - lam  # a Sub (a Python-scalar rsub exports as Neg + Add)
    a = -0.75
    w0 = _cc2(lam + 1.0, a)
    w1 = _cc1(lam, a)
    w2 = _cc1(one_minus, a)
    w3 = _cc2(one_minus + 1.0, a)
    base = lower.long()
    i0 = torch.clamp(base - 1, 0, in_size - 1)
    i1 = torch.clamp(base, 0, in_size - 1)
    i2 = torch.clamp(base + 1, 0, in_size - 1)
    i3 = torch.clamp(base + 2, 0, in_size - 1)
    return i0, i1, i2, i3, w0, w1, w2, w3


def bicubic_like_torch(maps, height_f, width_f, height: int, width: int):
    """maps [K, S, S] -> [K, height, width], equal to F.interpolate(maps[None], (height, width), mode="bicubic",
    align_corners=False)[0] on PyTorch's CPU."""
    size = maps.shape[-1]
    ix0, ix1, ix2, ix3, wx0, wx1, wx2, wx3 = _indices_weights(size, width_f, width)
    along_x = _sum4(maps.index_select(2, ix0), maps.index_select(2, ix1), maps.index_select(2, ix2),
                    maps.index_select(2, ix3), wx0, wx1, wx2, wx3)  # K x S x width
    iy0, iy1, iy2, iy3, wy0, wy1, wy2, wy3 = _indices_weights(size, height_f, height)
    return _sum4(along_x.index_select(1, iy0), along_x.index_select(1, iy1), along_x.index_select(1, iy2),
                 along_x.index_select(1, iy3), wy0[:, None], wy1[:, None], wy2[:, None], wy3[:, None])


@torch.jit.script_if_tracing
def heatmaps_to_keypoints(maps: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
    """detectron2.structures.keypoints.heatmaps_to_keypoints: maps [R, K, S, S], rois [R, 4] -> [R, K, 4]
    (x, y, logit, score)."""
    maps = maps.detach()
    rois = rois.detach()
    offset_x = rois[:, 0]
    offset_y = rois[:, 1]
    widths = torch.clamp(rois[:, 2] - rois[:, 0], min=1.0)
    heights = torch.clamp(rois[:, 3] - rois[:, 1], min=1.0)
    zero = torch.zeros_like(widths)
    widths_ceil = zero - torch.floor(zero - widths)  # ceil as Sub and Floor (no Ceil or Neg handler needed)
    heights_ceil = zero - torch.floor(zero - heights)
    width_corrections = widths / widths_ceil
    height_corrections = heights / heights_ceil
    num_rois = maps.shape[0]
    num_keypoints = maps.shape[1]
    xy_preds = torch.zeros([num_rois, num_keypoints, 4], dtype=maps.dtype)
    for i in range(num_rois):
        height = int(heights_ceil[i].long())
        width = int(widths_ceil[i].long())
        roi_map = bicubic_like_torch(maps[i], heights_ceil[i:i + 1], widths_ceil[i:i + 1], height, width)
        max_score, pos = torch.topk(roi_map.reshape(num_keypoints, -1), 1, dim=1)
        pool = torch.exp(maps[i] - max_score[:, :, None]).sum([1, 2])  # K
        score = torch.ones_like(pool) / pool  # exp(max - max) / sum: detectron2's roi_map_scores at the argmax
        pos = pos[:, 0]
        y_int = torch.div(pos, width, rounding_mode="trunc")  # pos >= 0: floor; ONNX integer Div
        x_int = pos - y_int * width
        x = (x_int.float() + 0.5) * width_corrections[i] + offset_x[i]
        y = (y_int.float() + 0.5) * height_corrections[i] + offset_y[i]
        xy_preds[i] = torch.stack([x, y, max_score[:, 0], score], dim=1)
    return xy_preds
