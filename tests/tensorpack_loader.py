"""Loads an npz through tensorpack's own SmartInit into a tf.compat.v1 graph holding the given variables.

    python tests/tensorpack_loader.py model.npz variables.json

variables.json: {name: shape} — the variables tensorpack's model creates (built by the test from the contract).
Prints one JSON line: {"warnings": [...], "restored": n, "max_abs_diff": x}. Run as a subprocess (TensorFlow).
"""

import json
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tensorpack's layers need Keras 2

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorpack.tfutils.sessinit import SmartInit  # noqa: E402


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def main(npz_path, variables_path):
    collect = _Collect()
    logging.getLogger("tensorpack").addHandler(collect)
    with open(variables_path) as f:
        shapes = json.load(f)
    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.get_variable(name, shape, tf.float32, tf.zeros_initializer())
                     for name, shape in shapes.items()}
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            SmartInit(npz_path).init(sess)
            values = sess.run(variables)
    stored = np.load(npz_path)
    diff = max(float(np.abs(values[n] - stored[n]).max(initial=0)) for n in shapes if n in stored.files)
    print(json.dumps({"warnings": collect.messages, "restored": len(values), "max_abs_diff": diff}))


if __name__ == "__main__":
    main(*sys.argv[1:])
