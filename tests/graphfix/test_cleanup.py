"""graphfix/passes/cleanup.py: constants folded and merged, dead code dropped, every weight kept."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphfix.passes import cleanup
from tests.graphfix.graphs import OPSET, copy, op_types, run


def test_cleanup_folds_dedups_and_drops_dead_code_but_keeps_every_weight():
    zeros = np.zeros(3, np.float32)
    nodes = [
        helper.make_node("Constant", [], ["a"], value=numpy_helper.from_array(np.array([1, 2, 3], np.float32))),
        helper.make_node("Constant", [], ["b"], value=numpy_helper.from_array(np.array([1, 2, 3], np.float32))),
        helper.make_node("Add", ["a", "b"], ["ab"], name="foldable"),
        helper.make_node("Identity", ["x"], ["x_id"]),
        helper.make_node("Mul", ["x_id", "ab"], ["m"]),
        helper.make_node("Add", ["m", "bias1"], ["m1"]),
        helper.make_node("Add", ["m1", "bias2"], ["m2"]),
        helper.make_node("Add", ["m2", "a"], ["p"]),
        helper.make_node("Mul", ["m2", "b"], ["q"]),
        helper.make_node("Add", ["p", "q"], ["pq"]),
        helper.make_node("Identity", ["pq"], ["y"]),
        helper.make_node("Sub", ["x", "a"], ["dead"]),
    ]
    graph = helper.make_graph(
        nodes, "cleanup", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        initializer=[numpy_helper.from_array(zeros, "bias1"), numpy_helper.from_array(zeros, "bias2"),
                     numpy_helper.from_array(zeros, "unused.weight")],
    )
    original = helper.make_model(graph, opset_imports=OPSET)
    model = cleanup.run(copy(original))
    onnx.checker.check_model(model, full_check=True)
    ops = op_types(model)
    assert "Identity" not in ops and "Sub" not in ops
    assert ops.count("Constant") == 2, "a and b are equal: one constant left, plus the folded a+b"
    assert sorted(i.name for i in model.graph.initializer) == ["bias1", "bias2", "unused.weight"], (
        "initializers are the checkpoint: equal ones keep their names, unread ones stay")
    assert [o.name for o in model.graph.output] == ["y"]
    x = np.array([0.5, -1, 2], np.float32)
    np.testing.assert_array_equal(run(model, x=x)[0], run(original, x=x)[0])
