"""detectron2's and the pb's outputs on an npz of images, each runtime in its own process (PyTorch and TensorFlow
crash when they share one). Both return {image key: outputs} with detectron2's 0-based `classes`."""

from d2tf.files import load_outputs
from d2tf.process import run_module


def detectron2_outputs(info, images_npz, out_npz):
    """detectron2 (PyTorch) with the config and weights model.json records."""
    source = info["source"]
    run_module("export.predict", "--config", source["config"], "--weights", source["weights"],
               "--images", images_npz, "--out", out_npz, label="detectron2 (PyTorch)")
    return load_outputs(out_npz)


def pb_outputs(pb_path, images_npz, out_npz):
    """The frozen pb (TensorFlow); its 1-based tensorpack labels become detectron2's classes."""
    run_module("tf_import.predict", pb_path, images_npz, out_npz, label="model.pb (TensorFlow)")
    outputs = load_outputs(out_npz)
    for dets in outputs.values():
        dets["classes"] = dets.pop("labels") - 1
    return outputs
