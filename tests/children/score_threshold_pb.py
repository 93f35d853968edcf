"""`python tests/children/score_threshold_pb.py SOURCE DESTINATION OLD NEW`: writes the frozen pb SOURCE with the
score threshold OLD of its box head's NMS calls (one Reshape of a Const feeds them all,
tf_import/ops/non_max_suppression.py) set to NEW, a constant of its own: the pb conftest.with_score_threshold's ONNX
graph translates to. A child process: TensorFlow must not share the test process with PyTorch."""

import sys

import numpy as np
import tensorflow as tf


def main(source, destination, old, new):
    graph_def = tf.compat.v1.GraphDef()
    with open(source, "rb") as f:
        graph_def.ParseFromString(f.read())
    values = {n.name: tf.make_ndarray(n.attr["value"].tensor) for n in graph_def.node if n.op == "Const"}
    nodes = {n.name: n for n in graph_def.node}
    thresholds = {n.input[4].split(":")[0] for n in graph_def.node if n.op.startswith("NonMaxSuppression")}
    found = [nodes[name] for name in thresholds if nodes[name].op == "Reshape"
             and values.get(nodes[name].input[0].split(":")[0], np.zeros(2)).size == 1
             and values[nodes[name].input[0].split(":")[0]].item() == np.float32(old)]
    assert len(found) == 1, f"{source}: {len(found)} NMS score thresholds are {old}"
    node, index = found[0], 0
    threshold = graph_def.node.add(name="d2tf_test_score_threshold", op="Const")
    threshold.attr["dtype"].type = tf.float32.as_datatype_enum
    threshold.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.float32(new)))
    node.input[index] = threshold.name
    with open(destination, "wb") as f:
        f.write(graph_def.SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
