"""tf_import/ops/elementwise.py: unary and binary elementwise ops (broadcasting, integer Div), Clip, Where, Cast."""

import numpy as np
import onnx

from tests.tf_import.op_cases import Case, X, draws, handler_tests, ints, node, one_op

floats, positive = draws(24)

CASES = [
    *[one_op(op.lower(), op, {"x": X}) for op in ("Relu", "Sigmoid", "Exp", "Floor")],
    *[one_op(op.lower(), op, {"x": positive(2, 3)}) for op in ("Log", "Sqrt")],
    one_op("not", "Not", {"x": np.array([True, False, True])}),
    one_op("add_broadcast", "Add", {"a": X, "b": floats(4)}),
    one_op("sub_broadcast", "Sub", {"a": floats(2, 1, 4), "b": floats(3, 1)}),
    one_op("mul_int64", "Mul", {"a": ints([[1, -2, 3]]), "b": ints([[4], [-5]])}),
    one_op("div_float", "Div", {"a": X, "b": positive(3, 1)}),
    # ONNX integer Div truncates toward zero (C's /), not floor division as Python's //.
    *[one_op(f"div_{np.dtype(t).name}_negatives", "Div", {"a": ints([7, -7, 7, -7, 0, -1, 9], t),
                                                          "b": ints([2, 2, -2, -2, 3, 5, -10], t)})
      for t in (np.int32, np.int64)],
    one_op("equal_int64", "Equal", {"a": ints([1, 2, 3, 4]), "b": ints([1, 0, 3, 0])}),
    one_op("greater", "Greater", {"a": X, "b": np.float32(0)}),
    one_op("less_broadcast", "Less", {"a": X, "b": floats(3, 1)}),
    one_op("greater_or_equal", "GreaterOrEqual", {"a": ints([1, 2, 3]), "b": ints([2, 2, 2])}),
    one_op("less_or_equal_broadcast", "LessOrEqual", {"a": np.float32([[0.5], [1.0]]), "b": np.float32([0.5, 1.0])}),
    one_op("and", "And", {"a": np.array([True, True, False]), "b": np.array([True, False, False])}),
    one_op("or", "Or", {"a": np.array([[True], [False]]), "b": np.array([True, False, False])}),
    one_op("clip_min_max", "Clip", {"x": X}, {"lo": np.float32(-0.5), "hi": np.float32(0.7)}),
    Case("clip_max_only", [node("Clip", ["x", "", "hi"])], {"x": X}, {"hi": np.float32(0.2)}),
    Case("clip_min_only", [node("Clip", ["x", "lo"])], {"x": X}, {"lo": np.float32(0.2)}),
    one_op("clip_int64", "Clip", {"x": ints([-5, 0, 5, 10])}, {"lo": ints(0), "hi": ints(6)}),
    one_op("where_broadcast", "Where", {"c": np.array([[True], [False]]), "a": floats(2, 3), "b": floats(3)}),
    # float -> int truncates toward zero, as C casts do.
    one_op("cast_float_to_int32", "Cast", {"x": np.array([-2.7, -0.5, 0.5, 2.7, 3.0], np.float32)},
           to=onnx.TensorProto.INT32),
    one_op("cast_int64_to_float", "Cast", {"x": ints([-3, 0, 1 << 20])}, to=onnx.TensorProto.FLOAT),
    one_op("cast_float_to_bool", "Cast", {"x": np.array([0.0, -1.5, 2.0], np.float32)}, to=onnx.TensorProto.BOOL),
    one_op("cast_bool_to_int64", "Cast", {"x": np.array([True, False])}, to=onnx.TensorProto.INT64),
    one_op("cast_bfloat16_refused", "Cast", {"x": X}, to=onnx.TensorProto.BFLOAT16, refused="ONNX element type 16"),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
