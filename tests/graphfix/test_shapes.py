"""graphfix/passes/shapes.py: static dims folded to constants, constant Ifs inlined, any other control flow refused."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from core import D2TFError
from graphfix.passes import shapes
from tests.graphfix.graphs import OPSET, copy, if_model, op_types, run


def _reshape_model():
    """y = Reshape(x, [-1, shape(x)[1] * shape(x)[2]]) for x [n, 3, 4]: the trace's way of flattening."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Constant", [], ["i1"], value=numpy_helper.from_array(np.array(1, np.int64))),
        helper.make_node("Constant", [], ["i2"], value=numpy_helper.from_array(np.array(2, np.int64))),
        helper.make_node("Gather", ["s", "i1"], ["d1"], name="d1"),
        helper.make_node("Gather", ["s", "i2"], ["d2"], name="d2"),
        helper.make_node("Mul", ["d1", "d2"], ["prod"]),
        helper.make_node("Constant", [], ["axes"], value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Unsqueeze", ["prod", "axes"], ["prod1"]),
        helper.make_node("Constant", [], ["minus1"], value=numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Concat", ["minus1", "prod1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "reshape", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 12])])
    return helper.make_model(graph, opset_imports=OPSET)


def test_shapes_folds_static_dims_and_keeps_the_dynamic_one():
    original = _reshape_model()
    model = shapes.run(copy(original))
    onnx.checker.check_model(model, full_check=True)
    assert "Gather" not in op_types(model) and "Mul" not in op_types(model), "the arithmetic on static dims is folded"
    target = next(n for n in model.graph.node if n.output[0] == "target")
    assert target.op_type == "Constant"
    np.testing.assert_array_equal(numpy_helper.to_array(target.attribute[0].t), [-1, 12])
    for n in (0, 1, 5):
        x = np.arange(n * 12, dtype=np.float32).reshape(n, 3, 4)
        np.testing.assert_array_equal(run(model, x=x)[0], run(original, x=x)[0])


def test_shapes_removes_if_with_constant_condition():
    original = if_model(cond_is_constant=True)
    model = shapes.run(copy(original))
    onnx.checker.check_model(model, full_check=True)
    assert "If" not in op_types(model)
    x = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(run(model, x=x)[0], x + 1)


def test_shapes_refuses_undecidable_control_flow():
    with pytest.raises(D2TFError, match="control flow left that graphfix cannot decide: If guard"):
        shapes.run(if_model(cond_is_constant=False))
