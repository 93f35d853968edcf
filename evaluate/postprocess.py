"""Detections mapped from the resized image back to the original one, as detectron2's detector_postprocess does
(boxes) and its paste_masks_in_image (masks), restated in numpy: the pb's outputs must go through the same
mapping as detectron2's. tests/test_evaluate_restatements.py checks these against detectron2's own functions."""

import numpy as np


def to_original(boxes, size, resized):
    """detector_postprocess: boxes scaled to the original image, clipped to it; `keep` drops the empty ones."""
    (h, w), (newh, neww) = size, resized
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4) * np.float32([w / neww, h / newh, w / neww, h / newh])
    boxes = np.clip(boxes, 0, np.float32([w, h, w, h]))
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes, keep


def paste_mask(mask, box, height, width):
    """paste_masks_in_image for one box-relative MxM mask of probabilities: grid_sample (bilinear,
    align_corners=False, zero padding) on the pixel centres of a window 1 px around the box, thresholded at 0.5.
    The sampling grid is separable, so the bilinear sampling is two small matrix products."""
    x0, y0, x1, y1 = (float(v) for v in box)
    c0, r0 = max(int(np.floor(x0)) - 1, 0), max(int(np.floor(y0)) - 1, 0)
    c1, r1 = min(int(np.ceil(x1)) + 1, width), min(int(np.ceil(y1)) + 1, height)
    rows = _bilinear_weights(np.arange(r0, r1), y0, y1, mask.shape[0])
    cols = _bilinear_weights(np.arange(c0, c1), x0, x1, mask.shape[1])
    pasted = np.zeros((height, width), bool)
    pasted[r0:r1, c0:c1] = rows @ mask.astype(np.float32) @ cols.T >= 0.5
    return pasted


def _bilinear_weights(pixels, lo, hi, size):
    """[len(pixels), size] weights with which grid_sample reads a size-long mask axis spanning [lo, hi] at the
    centres of `pixels`, computed in float32 in detectron2's order so that the sampling positions are bit-exact.
    grid_sample adds its four products in another order than the matrix products do, so a value within a float32
    rounding of 0.5 (e.g. four neighbours of exactly 0.5) may threshold the other way."""
    grid = ((pixels.astype(np.float32) + np.float32(0.5)) - np.float32(lo)) / np.float32(hi - lo) * 2 - 1
    pos = ((grid + 1) * size - 1) / 2
    first = np.floor(pos).astype(np.int64)
    frac = pos - first
    # Columns 0 and size+1 stand for the zero padding outside the mask and are dropped.
    weights = np.zeros((len(pixels), size + 2), np.float32)
    index = np.arange(len(pixels))
    weights[index, np.clip(first + 1, 0, size + 1)] += 1 - frac
    weights[index, np.clip(first + 2, 0, size + 1)] += frac
    return weights[:, 1:-1]
