"""`python -m bench.latency RUNTIME OUT image.npy RUNS`: one runtime's load time and the times of RUNS inferences
on one float32 BGR image (already at the model's input size), printed as one JSON line {"load": s, "runs": [s...]}.
The load time includes importing the runtime's library, as a fresh process of a user's would.

Each runtime runs in a process of its own, as a user's would (PyTorch and TensorFlow cannot share one), on the
converted directory OUT: detectron2 (the config and weights model.json records), onnxruntime on model.onnx, the pb
(tf.compat.v1 Session, by default and with runners.pb_runner.fast_start_config()) and the SavedModel's `tensorpack`
signature, the pb's interface with the weights as variables, and model.tflite and its smaller variants
(tflite_float16, tflite_int8, where written) in tf.lite.Interpreter (as many threads as cores; its first run
includes sizing its tensors to the image). The first run includes what each
runtime does on first use (TensorFlow's graph optimisation).
"""

import functools
import json
import os
import sys
import time

import numpy as np

from core import contract


def detectron2(out):
    from core import checkpoint, zoo
    from core.model_info import ModelInfo
    from export.model import build_model
    from runners.detectron2_runner import predict

    source = ModelInfo.read(os.path.join(out, contract.MODEL_JSON)).source
    model = build_model(zoo.load_config(source.config), checkpoint.load_weights(source.weights))
    return lambda image: predict(model, image)


def onnxruntime(out):
    from runners import onnx_runner

    session = onnx_runner.session(os.path.join(out, contract.ONNX))
    return lambda image: onnx_runner.run(session, image)


def pb(out, fast_start=False):
    from runners import pb_runner

    config = pb_runner.fast_start_config() if fast_start else None
    session, tensors = pb_runner.session(os.path.join(out, contract.PB), config)
    return lambda image: pb_runner.run(session, tensors, image)


def pb_fast_start(out):
    return pb(out, fast_start=True)


def saved_model(out):
    import tensorflow as tf

    function = tf.saved_model.load(os.path.join(out, contract.SAVED_MODEL)).signatures[contract.TENSORPACK_SIGNATURE]
    return lambda image: {k: v.numpy() for k, v in function(**{contract.INPUT: tf.constant(image)}).items()}


def tflite(out, name=contract.TFLITE):
    from runners import tflite_runner

    run = tflite_runner.signature(os.path.join(out, name), threads=os.cpu_count())
    return lambda image: tflite_runner.detections(run, image)


RUNTIMES = {"detectron2": detectron2, "onnxruntime": onnxruntime, "pb": pb, "pb_fast_start": pb_fast_start,
            "saved_model": saved_model, "tflite": tflite,
            **{f"tflite_{variant}": functools.partial(tflite, name=name)
               for variant, name in contract.TFLITE_VARIANTS.items()}}


def measure(runtime, out, image, runs):
    """{"load": seconds to load, "runs": seconds of each of `runs` inferences}."""
    start = time.perf_counter()
    infer = RUNTIMES[runtime](out)
    load = time.perf_counter() - start
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        infer(image)
        times.append(time.perf_counter() - start)
    return {"load": load, "runs": times}


if __name__ == "__main__":
    runtime, out, image, runs = sys.argv[1:]
    print(json.dumps(measure(runtime, out, np.load(image), int(runs))))
