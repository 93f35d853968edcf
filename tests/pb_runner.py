"""Runs a frozen pb the way a user of tensorpack's predict.py would: plain tf.compat.v1, nothing from d2tf.

    python tests/pb_runner.py model.pb images.npz outputs.npz

images.npz holds HxWx3 float32 BGR images; outputs.npz gets `<image key>/<output>` arrays and `<image key>/seconds`.
Run as a subprocess: TensorFlow must not share a process with PyTorch.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUTPUTS = ["boxes", "scores", "labels", "masks"]


def main(pb_path, images_path, out_path):
    graph_def = tf.compat.v1.GraphDef()
    with open(pb_path, "rb") as f:
        graph_def.ParseFromString(f.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    names = [f"output/{o}:0" for o in OUTPUTS if _has(graph, f"output/{o}")]
    results = {}
    with tf.compat.v1.Session(graph=graph) as sess:
        for key, image in np.load(images_path).items():
            start = time.perf_counter()
            values = sess.run(names, {"image:0": image})
            results[f"{key}/seconds"] = np.float64(time.perf_counter() - start)
            for name, value in zip(names, values):
                results[f"{key}/{name.split('/')[1][:-2]}"] = value
    assert not [m for m in sys.modules if m.split(".")[0] in ("d2tf", "tf_import", "export", "graphfix")]
    np.savez(out_path, **results)


def _has(graph, op_name):
    try:
        graph.get_operation_by_name(op_name)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    main(*sys.argv[1:])
