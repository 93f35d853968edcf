"""`python tests/children/serving_runner.py cases.npz out.npz`: tf_import/serving's steps on the cases
tests/test_serving.py writes, in a TensorFlow process of their own. A case's kind is its key's prefix: resize
(image, limits = [short edge, max size]), boxes (boxes, resized = [h, w], size = [h, w]), paste (masks, boxes,
size = [h, w])."""

import sys

import tensorflow as tf

from core.files import load_outputs, save_outputs
from tf_import.serving.postprocess import paste_masks, scale_boxes
from tf_import.serving.resize import output_size, resize_bilinear


def run(key, case):
    if key.startswith("resize"):
        short, largest = (int(v) for v in case["limits"])
        height, width = case["image"].shape[:2]
        new_size = output_size(height, width, short, largest) if short else (height, width)
        return {"image": resize_bilinear(tf.constant(case["image"]), *new_size).numpy()}
    if key.startswith("boxes"):
        boxes, keep = scale_boxes(tf.constant(case["boxes"]), tuple(case["resized"]), tuple(case["size"]))
        return {"boxes": boxes.numpy(), "keep": keep.numpy()}
    if key.startswith("paste"):
        return {"masks": paste_masks(tf.constant(case["masks"]), tf.constant(case["boxes"]), *case["size"]).numpy()}
    raise ValueError(key)


if __name__ == "__main__":
    cases = load_outputs(sys.argv[1])
    save_outputs(sys.argv[2], {key: run(key, case) for key, case in cases.items()})
