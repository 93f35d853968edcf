"""verify's photos: the user's image files (`--verify-images`), verified beside the synthetic images. Each is read as
detectron2's read_image reads it (evaluate/preprocess.py: its EXIF orientation applied), then given to every stage
as the graph's input, resized as the config's test resize does, and to the SavedModel as it comes.

There is no default photo: on a real photograph float32 round-off reaches past verify's fixed tolerances on deeper
models (measured with the suite's checkpoints: R101-FPN masks 1.2e-4, X101 keypoint scores 1.5e-4, R50-C4 detections
changing places), so a default photo would fail correct conversions until the tolerances follow the model's own
noise."""

import dataclasses
import os
import re

import numpy as np

from core import D2TFError
from core.cli import MAX_SIDE
from evaluate.preprocess import model_input, read_rgb


@dataclasses.dataclass(frozen=True)
class Photo:
    key: str  # its name in verify's npz files and report.md
    path: str
    rgb: np.ndarray  # HxWx3 uint8 RGB, upright: what the SavedModel takes
    image: np.ndarray  # the graph's input (float32, INPUT.FORMAT), resized as the test resize does: every stage's


def check_photos(paths):
    """One line for the first of `paths` that verify could not read (missing, not an image, too large to decode, or
    corrupt), so that convert finds it before its stages run."""
    for path in paths:
        read_rgb(path)


def read_photos(paths, info):
    """[Photo] of the image files `paths` for the model of ModelInfo `info`; one line for a file that cannot be read,
    or that would enter the model larger than MAX_SIDE a side (a config that does not resize takes a photo at its own
    size)."""
    resize, photos = info.resize, []
    for i, path in enumerate(paths, start=1):
        rgb = read_rgb(path)
        image = model_input(rgb, resize.min_size_test, resize.max_size_test, info.input.format)
        if max(image.shape[:2]) > MAX_SIDE:
            raise D2TFError(f"{path}: {_size(rgb)} enters the model at {_size(image)} (INPUT.MIN_SIZE_TEST "
                            f"{resize.min_size_test}, MAX_SIZE_TEST {resize.max_size_test}), more than {MAX_SIDE} a "
                            "side: give a smaller copy")
        photos.append(Photo(f"image{i}_{_name(path)}", os.fspath(path), rgb, image))
    return photos


def _name(path):
    """The file's name without extension, as an image key can hold it (npz entries are `<key>/<output>`)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem)[:40]


def _size(image):
    return "x".join(map(str, image.shape[:2]))
