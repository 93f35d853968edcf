"""`python tests/children/score_threshold_pb.py SOURCE DESTINATION OLD NEW`: writes the frozen pb SOURCE with its
score threshold OLD set to NEW (runners/lowered.py): the pb conftest.with_score_threshold's ONNX graph translates
to. A child process: TensorFlow must not share the test process with PyTorch."""

import sys

import tensorflow as tf

from runners import lowered


def main(source, destination, old, new):
    graph_def = tf.compat.v1.GraphDef()
    with open(source, "rb") as f:
        graph_def.ParseFromString(f.read())
    lowered.graph_def(graph_def, old, source, new)
    with open(destination, "wb") as f:
        f.write(graph_def.SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
