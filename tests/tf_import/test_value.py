"""tf_import/value.py: values a Conv made, held channels-last (NHWC) through layout-free ops until a layout-bound
one asks for ONNX's layout."""

import numpy as np
import onnx

from tests.tf_import.op_cases import PAD1, conv_then, draws, handler_tests, ints, node

floats, positive = draws(304)

CASES = [
    conv_then("nhwc_reshape", [node("Reshape", ["c", "shape"])], consts={"shape": ints([1, 4, -1])}),
    conv_then("nhwc_output", [node("Relu", ["c"])]),
    conv_then("nhwc_constants", [
        node("Add", ["c", "per_channel"], ["a"]), node("Mul", ["a", "scalar"], ["m"]),
        node("Sub", ["one", "m"], ["s"]), node("Div", ["s", "full"], ["d"]), node("Sigmoid", ["d"], ["e"]),
        node("Cast", ["e"], ["f"], to=onnx.TensorProto.DOUBLE), node("Flatten", ["f"]),
    ], consts={"per_channel": floats(1, 4, 1, 1), "scalar": np.float32(3), "one": ints([1.0], np.float32),
               "full": positive(1, 4, 6, 7)}),
    conv_then("nhwc_with_run_time_values", [
        node("Mul", ["c", "z"], ["m"]), node("Add", ["row", "m"], ["a"]), node("Greater", ["a", "c"], ["g"]),
        node("Not", ["g"], ["n"]), node("Where", ["n", "a", "c"]),
    ], inputs={"z": floats(1, 4, 6, 7), "row": floats(7)}),
    conv_then("nhwc_two_convs", [
        node("Conv", ["x", "w"], ["c2"], **PAD1), node("Add", ["c", "c2"], ["a"]), node("Floor", ["a"], ["f"]),
        node("Cast", ["f"], ["i"], to=onnx.TensorProto.INT64), node("Transpose", ["i"], perm=[0, 2, 3, 1]),
    ]),
    conv_then("nhwc_transpose_other", [node("Transpose", ["c"], perm=[0, 3, 2, 1])]),
    conv_then("nhwc_shape", [node("Shape", ["c"])]),
    # A run-time target leaves r's rank unknown when translating: ops that need no rank must still translate.
    conv_then("nhwc_and_unknown_rank", [
        node("Reshape", ["z", "shape"], ["r"]), node("Add", ["c", "r"], ["a"]),
        node("Concat", ["a", "r"], ["j"], axis=1), node("Split", ["j"], ["p", "q"], axis=1),
    ], inputs={"z": floats(4, 42), "shape": ints([1, 4, 6, 7])}),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
