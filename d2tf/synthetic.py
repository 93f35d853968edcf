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
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.float32)
