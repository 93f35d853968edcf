"""The attributes of a pb that equal their op's default (tf_import strips them, so older TF versions load the pb),
restated from TensorFlow's op registry; run as a subprocess, TensorFlow must not share the PyTorch test process:

    python tests/children/default_attrs.py model.pb   ->   {"default_valued_attrs": [...], "ops": {op: count}}
"""

import json
import sys

import tensorflow as tf
from tensorflow.python.framework import op_def_registry


def default_valued_attrs(pb_path):
    """(["node.attr" equal to its op's default], {op: count}), over the graph and its function library."""
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


if __name__ == "__main__":
    found, ops = default_valued_attrs(sys.argv[1])
    print(json.dumps({"default_valued_attrs": found, "ops": ops}))
