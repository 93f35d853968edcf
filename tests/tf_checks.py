"""Every TensorFlow-side check of one architecture that the conversion itself does not run, in one process
(TensorFlow must not share the PyTorch test process, and each start costs seconds):

    python tests/tf_checks.py model.fixed.tensorpack.onnx images.npz model.pb OUT_DIR

1. translates the tensorpack-mode fixed graph with tf_import, serialises the frozen GraphDef and loads it back as
   a user loads a pb (plain tf.compat.v1), and runs it on the images -> OUT_DIR/tensorpack_pb.npz. Grappler is off:
   its first-run optimisation cost 8 s a model, and without it the run checks the translation as written (the
   pipeline's verify runs its pb with TensorFlow's defaults);
2. lists the attributes of the conversion's model.pb that equal their op's default (tf_import strips them, so
   older TF versions load the pb) -> OUT_DIR/report.json, with the translation time.
"""

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import op_def_registry

from core.files import load_onnx, save_outputs
from runners.pb_runner import predict
from tf_import.freeze import frozen_graph_def

UNOPTIMISED = tf.compat.v1.ConfigProto()
UNOPTIMISED.graph_options.rewrite_options.disable_meta_optimizer = True


def translated_pb(onnx_path, pb_path):
    """Writes the frozen pb of a fixed graph, as tf_import does; returns the seconds translation took."""
    start = time.perf_counter()
    graph_def = frozen_graph_def(load_onnx(onnx_path))
    with open(pb_path, "wb") as f:
        f.write(graph_def.SerializeToString(deterministic=True))
    return time.perf_counter() - start


def default_valued_attrs(pb_path):
    """(["node.attr" equal to its op's default], {op: count}) of a pb, restated from TF's op registry."""
    graph_def = tf.compat.v1.GraphDef()
    with open(pb_path, "rb") as f:
        graph_def.ParseFromString(f.read())
    found, ops = [], {}
    for node in [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]:
        ops[node.op] = ops.get(node.op, 0) + 1
        for attr in op_def_registry.get(node.op).attr:
            if attr.HasField("default_value") and attr.name in node.attr and node.attr[attr.name] == attr.default_value:
                found.append(f"{node.name}.{attr.name}")
    return found, ops


def main(onnx_path, images_path, model_pb, out_dir):
    pb_path = os.path.join(out_dir, "model.tensorpack.pb")
    seconds = translated_pb(onnx_path, pb_path)
    with np.load(images_path) as images:
        outputs = predict(pb_path, {key: images[key] for key in images.files}, UNOPTIMISED)
    save_outputs(os.path.join(out_dir, "tensorpack_pb.npz"), outputs)
    os.remove(pb_path)
    defaults, ops = default_valued_attrs(model_pb)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"translate_seconds": seconds, "default_valued_attrs": defaults, "ops": ops}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
