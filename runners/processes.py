"""detectron2's, the pb's, the SavedModel's, the TFLite model's and tensorpack's model's outputs on an npz of
images, each runtime in its own process (PyTorch and TensorFlow crash when they share one). All return {image key:
outputs} with detectron2's 0-based `classes`."""

import os

from core.contract import labels_to_classes
from core.files import load_outputs
from core.process import run_module
from runners import lowered


def detectron2_on_images(info, images_npz, out_npz, photos=None, lower_from=None, native=False):
    """detectron2 (PyTorch) with the config and weights model.json records. `photos`: (photos npz, their outputs
    npz), uint8 RGB photos the same process also runs through detectron2's whole inference (its test resize and
    postprocessing); their outputs are left in that npz. `lower_from`, here and below: the model info's score
    threshold, checked, and lowered on the images (runners/lowered.py). `native`: the images run with PyTorch's
    native convolutions instead of oneDNN's (verify's measure of the model's own noise)."""
    _detectron2(info, "--images", images_npz, "--out", out_npz, *_lowering(lower_from),
                *(["--native-convolutions"] if native else []),
                *(["--photos", photos[0], "--photos-out", photos[1]] if photos else []))
    return load_outputs(out_npz)


def _detectron2(info, *args):
    """runners.detectron2_runner with the config and weights model.json records."""
    source = info.source
    run_module("runners.detectron2_runner", "--config", source.config, "--weights", source.weights, *args,
               label="detectron2 (PyTorch)")


def saved_model_on_images(path, images_npz, out_npz):
    """The SavedModel's serving signature (TensorFlow) on uint8 RGB photos; outputs in the ONNX interface."""
    run_module("runners.saved_model_runner", path, images_npz, out_npz, label="saved_model (TensorFlow)")
    return load_outputs(out_npz)


def pb_on_images(pb_path, images_npz, out_npz, lower_from=None):
    """The frozen pb (TensorFlow)."""
    return _labelled("runners.pb_runner", [pb_path, images_npz, out_npz], "model.pb (TensorFlow)", lower_from)


def tflite_on_images(path, images_npz, out_npz, lower_from=None):
    """OUT/model.tflite (or a smaller variant of it) in tf.lite.Interpreter (TensorFlow)."""
    return _labelled("runners.tflite_runner", [path, images_npz, out_npz], f"{os.path.basename(path)} (TFLite)",
                     lower_from)


def tensorpack_on_images(client_dir, out_dir, images_npz, out_npz, lower_from=None):
    """tensorpack's own model (client_dir: its examples/FasterRCNN) on out_dir's model.npz and settings."""
    return _labelled("runners.tensorpack_runner", [client_dir, out_dir, images_npz, out_npz], "tensorpack's model",
                     lower_from)


def _lowering(lower_from):
    return [] if lower_from is None else [lowered.ARGUMENT, repr(float(lower_from))]


def _labelled(module, args, label, lower_from):
    """Runs a TensorFlow runner whose last argument is its outputs npz; tensorpack's 1-based labels become
    detectron2's classes."""
    run_module(module, *_lowering(lower_from), *args, label=label)
    return {key: labels_to_classes(outputs) for key, outputs in load_outputs(args[-1]).items()}
