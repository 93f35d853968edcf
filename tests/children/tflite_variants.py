"""`python tests/children/tflite_variants.py`: converts a function with a 3x3 convolution of 3 to 512 channels with
tf_import.tflite.converted as model.tflite and as each of contract.TFLITE_VARIANTS, runs each on one image and
prints, as JSON by variant ("float32" for model.tflite): the flatbuffer's bytes, the element types of its tensors,
and the largest difference of its output from model.tflite's relative to that output's largest value.
A child process: TensorFlow must not share the test process with PyTorch."""

import json

import numpy as np
import tensorflow as tf

from core.contract import TFLITE_VARIANTS
from tf_import.tflite import converted

WEIGHT = np.random.default_rng(0).normal(0, 1, (3, 3, 3, 512)).astype(np.float32)


@tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32, name="image")], autograph=False)
def dense(image):
    features = tf.nn.conv2d(image[None], tf.constant(WEIGHT), 1, "SAME")
    return {"scores": tf.reduce_sum(tf.nn.relu(features), [0, 3])}


def main():
    function = dense.get_concrete_function()
    image = np.random.default_rng(1).uniform(0, 1, (4, 5, 3)).astype(np.float32)
    report, reference = {}, None
    for variant in ("float32", *TFLITE_VARIANTS):
        flatbuffer = converted(function, None if variant == "float32" else variant)
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
        scores = interpreter.get_signature_runner()(image=image)["scores"]
        reference = scores if reference is None else reference
        report[variant] = {"bytes": len(flatbuffer),
                           "types": sorted({np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}),
                           "relative": float(np.abs(scores - reference).max() / np.abs(reference).max())}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
