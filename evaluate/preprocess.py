"""Images as detectron2's test-time pipeline prepares them (detection_utils.read_image, then ResizeShortestEdge),
restated with PIL and numpy: each image is prepared once, here, and both runtimes get the very same pixels.
tests/test_evaluate_restatements.py checks these against detectron2's own functions. Also the one reading of a
user's image file (evaluate's COCO images, verify's photos), refused in one line when it is missing, not an image
or too large to decode."""

import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core import D2TFError
from core.cli import MAX_SIDE

# A file is decoded whole before its test resize, as detectron2 reads it: (4 * MAX_SIDE)^2 = 67 megapixels, 200 MB
# of uint8 RGB per copy, is above any camera's photo (61 MP). A larger one is refused from its header, undecoded.
MAX_PIXELS = (4 * MAX_SIDE) ** 2


def load_image(path, min_size, max_size, input_format="BGR"):
    """(HxWx3 float32 image in the model's INPUT.FORMAT, resized for the model, original (h, w))."""
    rgb = read_rgb(path)
    return model_input(rgb, min_size, max_size, input_format), rgb.shape[:2]


def model_input(rgb, min_size, max_size, input_format="BGR"):
    """The graph's input (core/contract.py: float32 in the model's INPUT.FORMAT) of an HxWx3 uint8 RGB image,
    resized as the test resize does. detectron2 resizes the uint8 image and only then converts it to float."""
    return swap_channels(resize(rgb, min_size, max_size), input_format).astype(np.float32)


def swap_channels(image, input_format):
    """An HxWx3 image's channels from RGB to INPUT.FORMAT's order (BGR or RGB), or back: the same swap either way."""
    return image[:, :, ::-1] if input_format == "BGR" else image


def read_rgb(path):
    """HxWx3 uint8 RGB, turned upright as its EXIF orientation says: ImageOps.exif_transpose applies the transpose
    detectron2's _apply_exif_orientation maps each orientation tag to."""
    with open_image(path) as image:
        try:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        except OSError as e:  # a truncated or corrupt file fails only when its pixels are decoded
            raise D2TFError(f"{path}: cannot decode it ({e})") from None


def open_image(path):
    """The PIL image of `path` with only its header read; one line when it is missing, not an image, or larger than
    MAX_PIXELS."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, in d2tf's words
            image = Image.open(path)
    except FileNotFoundError:
        raise D2TFError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise D2TFError(f"{path}: not an image (Pillow cannot read it)") from None
    except OSError as e:
        raise D2TFError(f"{path}: cannot read it ({e.strerror})") from None
    except Image.DecompressionBombError:  # PIL's own refusal, at twice the size it warns at
        raise D2TFError(_too_large(path)) from None
    if image.width * image.height > MAX_PIXELS:
        image.close()
        raise D2TFError(_too_large(path))
    return image


def _too_large(path):
    return (f"{path}: more than {MAX_PIXELS / 1e6:.0f} megapixels, which d2tf does not decode (an image is read "
            "whole before it is resized): give a smaller copy")


def resize(image, min_size, max_size):
    """ResizeShortestEdge's ResizeTransform of an HxWxC uint8 image: PIL bilinear on the uint8 pixels."""
    newh, neww = resized_shape(*image.shape[:2], min_size, max_size)
    if (newh, neww) == image.shape[:2]:
        return image
    return np.asarray(Image.fromarray(image).resize((neww, newh), Image.BILINEAR))


def resized_shape(height, width, min_size, max_size):
    """(height, width) of an image after the test resize; MIN_SIZE_TEST 0 means no resize."""
    return output_shape(height, width, min_size, max_size) if min_size else (height, width)


def output_shape(height, width, min_size, max_size):
    """(new height, new width): ResizeShortestEdge.get_output_shape, rounding included."""
    scale = min_size * 1.0 / min(height, width)
    newh, neww = (min_size * 1.0, scale * width) if height < width else (scale * height, min_size * 1.0)
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)
