"""tf_import.freeze.merge_repeated_nodes on a small graph with known repeats; run as a subprocess (TensorFlow must
not share the PyTorch test process):

    python tests/children/repeated_nodes.py
        ->   {"nodes": [names before], "kept": [names after], "outputs_equal": bool}

The graph: two equal scalar Consts and the two Muls that use them (a repeat, then a chain's repeat), a Mul repeated
under a name to keep, two equal large Consts (not compared), two random ops (stateful: never merged).
"""

import json

import numpy as np
import tensorflow as tf

from tf_import.freeze import merge_repeated_nodes


def graph():
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        a = tf.multiply(x, tf.constant(2.0, name="two_a"), name="mul_a")
        b = tf.multiply(x, tf.constant(2.0, name="two_b"), name="mul_b")
        big = tf.reduce_sum(tf.constant(np.ones(1000, np.float32), name="big_a"), name="sum_a") + tf.reduce_sum(
            tf.constant(np.ones(1000, np.float32), name="big_b"), name="sum_b")
        noise = tf.random.uniform([4], seed=1, name="rand_a") - tf.random.uniform([4], seed=1, name="rand_b")
        tf.identity(a + b + big + 0 * noise, name="out")
        tf.multiply(x, tf.constant(2.0, name="two_c"), name="kept")
    return graph.as_graph_def()


def run(graph_def):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        return sess.run(["out:0", "kept:0"], {"x:0": np.arange(4, dtype=np.float32)})


if __name__ == "__main__":
    graph_def = graph()
    nodes = [n.name for n in graph_def.node]
    before = run(graph_def)
    merge_repeated_nodes(graph_def, keep={"kept"})
    after = run(graph_def)
    print(json.dumps({"nodes": nodes, "kept": [n.name for n in graph_def.node],
                      "outputs_equal": all(np.array_equal(u, v) for u, v in zip(before, after))}))
