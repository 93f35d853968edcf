"""A deterministic synthetic test image (numpy only, usable on both sides of the process boundary)."""

import numpy as np


def synthetic_image(height=256, width=320, seed=0):
    """HxWx3 float32 BGR in 0..255: a smooth gradient with random filled rectangles and discs.

    Objects of many sizes and colours give a calibrated random detector varied, non-degenerate detections.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([60 + 80 * yy / height, 90 + 60 * xx / width, 120 + 40 * (xx + yy) / (width + height)], -1)
    for _ in range(12):
        color = rng.uniform(0, 255, 3)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.04, 0.3) * height, rng.uniform(0.04, 0.3) * width
        if rng.random() < 0.5:
            inside = (np.abs(yy - cy) < ry) & (np.abs(xx - cx) < rx)
        else:
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        image[inside] = color
    return _box_blur(image, 5).astype(np.float32)


def _box_blur(image, k):
    """Softens edges: a sharp synthetic image makes RoIAlign outputs hypersensitive to sub-pixel box shifts, so
    float round-off in the boxes would dominate every runtime comparison (real photos are smoother)."""
    padded = np.pad(image, ((k // 2, k // 2), (k // 2, k // 2), (0, 0)), mode="edge")
    out = np.zeros_like(image)
    for dy in range(k):
        for dx in range(k):
            out += padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
    return out / (k * k)
