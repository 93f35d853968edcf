"""detectron2's and the pb's outputs on an npz of images, each runtime in its own process (PyTorch and TensorFlow
crash when they share one). Both return {image key: outputs} with detectron2's 0-based `classes`."""

from core.contract import labels_to_classes
from core.files import load_outputs
from core.process import run_module


def detectron2_on_images(info, images_npz, out_npz):
    """detectron2 (PyTorch) with the config and weights model.json records."""
    source = info["source"]
    run_module("runners.detectron2_runner", "--config", source["config"], "--weights", source["weights"],
               "--images", images_npz, "--out", out_npz, label="detectron2 (PyTorch)")
    return load_outputs(out_npz)


def pb_on_images(pb_path, images_npz, out_npz):
    """The frozen pb (TensorFlow); its 1-based tensorpack labels become detectron2's classes."""
    run_module("runners.pb_runner", pb_path, images_npz, out_npz, label="model.pb (TensorFlow)")
    return {key: labels_to_classes(outputs) for key, outputs in load_outputs(out_npz).items()}
