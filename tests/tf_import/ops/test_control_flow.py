"""tf_import/ops/control_flow.py: Loop, with hand-made bodies, and Identity."""

import numpy as np
import onnx
from onnx import helper

from tests.tf_import.op_cases import Case, X, conv_then, draws, handler_tests, ints, node, one_op

floats = draws(128983).floats

FLOAT, INT64, BOOL = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64, onnx.TensorProto.BOOL
NEXT = node("Identity", ["going"], ["going_out"])  # a body's condition: unchanged


def loop_body(nodes, carried, outputs, going=()):
    """A Loop's body: inputs i (the iteration), going (the condition, of shape `going`) and `carried`; `outputs`
    (the condition first). Each maps names to (ONNX element type, shape or None: unknown)."""
    def declared(values):
        return [helper.make_tensor_value_info(name, *typed) for name, typed in values.items()]

    return helper.make_graph(nodes, "body", declared({"i": (INT64, []), "going": (BOOL, going), **carried}),
                             declared(outputs))


ROW = [node("Cast", ["i"], ["f"], to=FLOAT), node("Constant", [], ["axes"], value_ints=[0, 1]),
       node("Unsqueeze", ["f", "axes"], ["row"])]  # [[i]]: the body's Constant axes must stay known
GROWN = loop_body([*ROW, node("Concat", ["rows", "row"], ["rows_out"], axis=0), NEXT],
                  {"rows": (FLOAT, None)}, {"going_out": (BOOL, []), "rows_out": (FLOAT, None)})
ACCUMULATED = loop_body([node("Add", ["acc", "c"], ["sum"]), node("Squeeze", ["sum", "axes"], ["squeezed"]),
                         node("Mul", ["squeezed", "k"], ["scaled"]), node("Unsqueeze", ["scaled", "axes"], ["acc_out"]),
                         NEXT], {"acc": (FLOAT, None)}, {"going_out": (BOOL, []), "acc_out": (FLOAT, None)})
COUNTED = loop_body([node("Add", ["total", "i"], ["total_out"]), node("Less", ["i", "stop"], ["going_out"])],
                    {"total": (INT64, [])}, {"going_out": (BOOL, []), "total_out": (INT64, [])})
# M, the condition and the body's condition as one-element tensors, which onnxruntime takes for scalars
COUNTED_IN_ONES = loop_body([node("Add", ["total", "i"], ["total_out"]), node("Less", ["i", "stop"], ["less"]),
                             node("Constant", [], ["one"], value_ints=[1]),
                             node("Reshape", ["less", "one"], ["going_out"])],
                            {"total": (INT64, [])}, {"going_out": (BOOL, [1]), "total_out": (INT64, [])}, [1])
SCANNED = loop_body([node("Gather", ["x", "i"], ["picked"]), node("Mul", ["picked", "rows"], ["scaled"]),
                     node("Add", ["rows", "picked"], ["rows_out"]), NEXT], {"rows": (FLOAT, None)},
                    {"going_out": (BOOL, []), "rows_out": (FLOAT, None), "scaled": (FLOAT, [3])})
STACKED = {"m": ints(4), "x": floats(4, 3), "rows": floats(3)}
CASES = [
    one_op("identity", "Identity", {"x": X}),
    conv_then("identity_nhwc", [node("Identity", ["c"], ["i"]), node("Flatten", ["i"])]),
    Case("loop_carried_shape_grows", [node("Loop", ["m", "", "rows"], body=GROWN)],
         {"m": ints(5), "rows": floats(1, 1)}),
    # The body reads a value held channels-last and known ones (axes must stay known), read again after the loop.
    conv_then("loop_reads_enclosing_values", [
        node("Loop", ["m", "", "acc"], ["y"], body=ACCUMULATED), node("Add", ["y", "k"], ["a"]),
        node("Sub", ["a", "c"], ["out"]),
    ], inputs={"m": ints(3), "acc": floats(1, 4, 6, 7)}, consts={"k": np.float32(0.5), "axes": ints([0])}),
    Case("loop_no_iterations", [node("Loop", ["m", "", "rows"], body=GROWN)], {"m": ints(0), "rows": floats(1, 1)}),
    Case("loop_scan_outputs", [node("Loop", ["m", "", "rows"], ["rows_out", "scans"], body=SCANNED)], STACKED),
    Case("loop_scan_outputs_no_iterations", [node("Loop", ["m", "", "rows"], ["rows_out", "scans"], body=SCANNED)],
         {**STACKED, "m": ints(0)}),
    Case("loop_condition_stops_early", [node("Loop", ["m", "go", "total"], body=COUNTED)],
         {"m": ints(10), "go": np.array(True), "total": ints(100)}, {"stop": ints(3)}),
    Case("loop_without_trip_count", [node("Loop", ["", "go", "total"], body=COUNTED)],
         {"go": np.array(True), "total": ints(100)}, {"stop": ints(6)}),
    Case("loop_conditions_in_one_element_tensors", [node("Loop", ["m", "go", "total"], body=COUNTED_IN_ONES)],
         {"m": ints([10]), "go": np.array([True]), "total": ints(100)}, {"stop": ints(3)}),
    Case("loop_condition_false_at_first", [node("Loop", ["m", "go", "total"], body=COUNTED)],
         {"m": ints(10), "go": np.array(False), "total": ints(100)}, {"stop": ints(3)}),
    Case("loop_carried_rank_change_refused", [node("Loop", ["m", "", "rows"], body=loop_body(
        [node("Constant", [], ["axes"], value_ints=[0]), node("Unsqueeze", ["rows", "axes"], ["rows_out"]), NEXT],
        {"rows": (FLOAT, None)}, {"going_out": (BOOL, []), "rows_out": (FLOAT, None)}))],
         {"m": ints(2), "rows": floats(3)}, refused="loop-carried value 'rows_out' changes rank from 1 to 2"),
    *[Case(f"loop_scan_shape_{what}_refused", [node("Loop", ["m", "", "rows"], ["rows_out", "scans"], body=loop_body(
        SCANNED.node, {"rows": (FLOAT, None)},
        {"going_out": (BOOL, []), "rows_out": (FLOAT, None), "scaled": (FLOAT, shape)}))], STACKED,
           refused="scan output 'scaled' without a declared type and static shape")
      for what, shape in (("unknown", None), ("symbolic", ["n"]))],
    Case("loop_body_unknown_op_refused", [node("Loop", ["m", "", "x"], body=loop_body(
        [node("Hardmax", ["x_in"], ["x_out"]), NEXT], {"x_in": (FLOAT, None)},
        {"going_out": (BOOL, []), "x_out": (FLOAT, None)}))], {"m": ints(2), "x": X},
         refused="no handler for op type Hardmax"),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
