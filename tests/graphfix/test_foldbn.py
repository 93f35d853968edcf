"""graphfix/passes/foldbn.py: a BatchNormalization folded into the Conv it alone reads."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphfix.passes import foldbn
from tests.graphfix.graphs import OPSET, copy, op_types, run


def _bn_inputs(rng, prefix, channels):
    """gamma, beta, mean, var of a FrozenBN with statistics far from the identity."""
    values = [rng.uniform(0.5, 2, channels), rng.normal(0, 1, channels), rng.normal(0, 1, channels),
              rng.uniform(0.1, 3, channels)]
    return [numpy_helper.from_array(v.astype(np.float32), f"{prefix}.{name}")
            for v, name in zip(values, ("weight", "bias", "running_mean", "running_var"))]


def _bn(x, prefix, out):
    return helper.make_node("BatchNormalization", [x] + [f"{prefix}.{n}" for n in
                            ("weight", "bias", "running_mean", "running_var")], [out], epsilon=1e-5)


def test_foldbn_folds_conv_bn_pairs_and_leaves_shared_outputs():
    rng = np.random.default_rng(0)
    w = lambda name, *shape: numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32), name)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "c1.weight"], ["c1"], pads=[1, 1, 1, 1]),  # no bias: folding adds one
        _bn("c1", "c1.norm", "n1"),
        helper.make_node("Conv", ["n1", "c2.weight", "c2.bias"], ["c2"]),
        _bn("c2", "c2.norm", "n2"),
        helper.make_node("Conv", ["n2", "c3.weight"], ["c3"]),  # read twice: its BN cannot absorb it
        _bn("c3", "c3.norm", "n3"),
        helper.make_node("Add", ["n3", "c3"], ["y"]),
    ]
    inits = [w("c1.weight", 4, 3, 3, 3), w("c2.weight", 4, 4, 1, 1), w("c2.bias", 4), w("c3.weight", 4, 4, 1, 1)]
    for prefix in ("c1.norm", "c2.norm", "c3.norm"):
        inits += _bn_inputs(rng, prefix, 4)
    graph = helper.make_graph(nodes, "foldbn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=inits)
    original = helper.make_model(graph, opset_imports=OPSET)
    model = foldbn.run(copy(original))
    onnx.checker.check_model(model, full_check=True)
    assert op_types(model) == ["Conv", "Conv", "Conv", "BatchNormalization", "Add"]
    names = {i.name for i in model.graph.initializer}
    assert {"c1.weight.bn_folded", "c1.weight.bn_folded_bias", "c2.weight.bn_folded"} <= names
    assert {"c1.weight", "c1.norm.running_var", "c2.bias", "c3.weight"} <= names, "originals stay for the npz"
    reads = {name for node in model.graph.node for name in node.input}
    assert not reads & {"c1.weight", "c1.norm.running_var", "c2.bias"} and "c3.weight" in reads
    x = rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(run(model, x=x)[0], run(original, x=x)[0], rtol=1e-5, atol=1e-5)
