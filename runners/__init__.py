"""Running a model on images: detectron2 (PyTorch), onnxruntime on an ONNX file, the frozen pb and the SavedModel
(TensorFlow), tensorpack's own model. PyTorch and TensorFlow crash when they share a process, so `processes` starts
each in its own."""

import numpy as np

from core import cli
from core.files import save_outputs


def on_npz(images_npz, out_npz, what, predict):
    """Saves to `out_npz` what `predict` ({key: image} -> {key: {output: array}}) gives on the images of
    `images_npz`, logging it as running `what` on them."""
    with np.load(images_npz) as npz, cli.step(f"running {what} on {len(npz.files)} "
                                              f"image{'' if len(npz.files) == 1 else 's'}"):
        results = predict({key: npz[key] for key in npz.files})
    save_outputs(out_npz, results)
