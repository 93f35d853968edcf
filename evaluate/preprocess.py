"""Images as detectron2's test-time pipeline prepares them (detection_utils.read_image, then ResizeShortestEdge),
restated with PIL and numpy: each image is prepared once, here, and both runtimes get the very same pixels.
tests/test_evaluate_restatements.py checks these against detectron2's own functions."""

import numpy as np
from PIL import Image, ImageOps


def load_image(path, min_size, max_size):
    """(HxWx3 float32 BGR image resized for the model, original (h, w)). detectron2 resizes the uint8 image and
    only then converts it to float."""
    rgb = read_rgb(path)
    return resize(rgb, min_size, max_size)[:, :, ::-1].astype(np.float32), rgb.shape[:2]


def read_rgb(path):
    """HxWx3 uint8 RGB, turned upright as its EXIF orientation says."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def resize(image, min_size, max_size):
    """ResizeShortestEdge's ResizeTransform of an HxWxC uint8 image: PIL bilinear on the uint8 pixels.
    MIN_SIZE_TEST 0 means no resize."""
    if not min_size:
        return image
    newh, neww = output_shape(*image.shape[:2], min_size, max_size)
    return np.asarray(Image.fromarray(image).resize((neww, newh), Image.BILINEAR))


def output_shape(height, width, min_size, max_size):
    """(new height, new width): ResizeShortestEdge.get_output_shape, rounding included."""
    scale = min_size * 1.0 / min(height, width)
    newh, neww = (min_size * 1.0, scale * width) if height < width else (scale * height, min_size * 1.0)
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)
