"""Every TensorFlow-side check of one architecture, in one process (TensorFlow must not share the PyTorch test
process, and each start costs seconds):

    python tests/tf_checks.py model.fixed.tensorpack.onnx images.npz model.npz variables.json OUT_DIR

1. translates the tensorpack-mode fixed graph with tf_import, serialises the frozen GraphDef and loads it back as
   a user loads a pb (plain tf.compat.v1), and runs it on the images -> OUT_DIR/tensorpack_pb.npz. Grappler is off:
   its first-run optimisation cost 8 s a model, and without it the run checks the translation as written (the
   pipeline's verify runs its pb with TensorFlow's defaults);
2. loads model.npz through tensorpack 0.11's own SmartInit into a graph holding the variables of variables.json
   ({name: shape}, built by the test from the contract) -> OUT_DIR/report.json: SmartInit's warnings, how many
   variables it restored and the largest difference between a restored variable and the npz.
"""

import json
import logging
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tensorpack's layers need Keras 2

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from core.files import load_onnx, save_outputs  # noqa: E402
from runners.pb_runner import predict  # noqa: E402
from tf_import.freeze import frozen_graph_def  # noqa: E402

UNOPTIMISED = tf.compat.v1.ConfigProto()
UNOPTIMISED.graph_options.rewrite_options.disable_meta_optimizer = True


def translated_pb(onnx_path, pb_path):
    """Writes the frozen pb of a fixed graph, as tf_import does; returns the seconds translation took."""
    start = time.perf_counter()
    graph_def = frozen_graph_def(load_onnx(onnx_path))
    with open(pb_path, "wb") as f:
        f.write(graph_def.SerializeToString(deterministic=True))
    return time.perf_counter() - start


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def smartinit_report(npz_path, shapes):
    from tensorpack.tfutils.sessinit import SmartInit

    collect = _Collect()
    logging.getLogger("tensorpack").addHandler(collect)
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.get_variable(name, shape, tf.float32, tf.zeros_initializer())
                     for name, shape in shapes.items()}
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            SmartInit(npz_path).init(sess)
            values = sess.run(variables)
    with np.load(npz_path) as stored:
        diff = max(float(np.abs(values[n] - stored[n]).max(initial=0)) for n in shapes if n in stored.files)
    return {"warnings": collect.messages, "restored": len(values), "max_abs_diff": diff}


def main(onnx_path, images_path, npz_path, variables_path, out_dir):
    pb_path = os.path.join(out_dir, "model.tensorpack.pb")
    seconds = translated_pb(onnx_path, pb_path)
    with np.load(images_path) as images:
        outputs = predict(pb_path, {key: images[key] for key in images.files}, UNOPTIMISED)
    save_outputs(os.path.join(out_dir, "tensorpack_pb.npz"), outputs)
    os.remove(pb_path)
    with open(variables_path) as f:
        report = smartinit_report(npz_path, json.load(f))
    report["translate_seconds"] = seconds
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
