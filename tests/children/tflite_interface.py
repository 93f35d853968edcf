"""`python tests/children/tflite_interface.py MODEL.onnx ROWS`: converts a d2tf-interface ONNX graph with
tf_import.tflite.tflite_bytes (outputs padded to ROWS) and prints, as JSON, for a zero image and one with two
pixels above 0.5: the raw signature outputs (padded, with num_detections) and runners.tflite_runner.detections' cut.
A child process: TensorFlow must not share the test process with PyTorch."""

import json
import sys

import numpy as np
import tensorflow as tf

from core.contract import TFLITE
from core.files import load_onnx
from runners.tflite_runner import detections
from tf_import.tflite import tflite_bytes


def main(path, rows):
    flatbuffer = tflite_bytes(load_onnx(path), int(rows))[TFLITE]
    run = tf.lite.Interpreter(model_content=flatbuffer).get_signature_runner()
    two = np.zeros((4, 5, 3), np.float32)
    two[1, 2, 0], two[3, 4, 2] = 2.0, 7.0
    report = {}
    for name, image in (("none", np.zeros((4, 5, 3), np.float32)), ("two", two)):
        report[name] = {"raw": {k: v.tolist() for k, v in run(image=image).items()},
                        "cut": {k: v.tolist() for k, v in detections(run, image).items()}}
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
