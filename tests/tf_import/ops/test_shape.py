"""tf_import/ops/shape.py: shapes and layouts, and Constant in each attribute form."""

import numpy as np
from onnx import helper, numpy_helper

from tests.tf_import.op_cases import INT64_MAX, Case, X, conv_then, draws, handler_tests, ints, node, one_op

floats = draws(128426).floats

SHAPE = [
    one_op("shape", "Shape", {"x": X}),
    one_op("shape_start_end", "Shape", {"x": X}, start=1, end=-1),
    one_op("reshape_copy_and_infer", "Reshape", {"x": X}, {"shape": ints([0, -1])}),
    one_op("reshape_known", "Reshape", {"x": X}, {"shape": ints([4, 6])}),
    one_op("reshape_run_time_shape", "Reshape", {"x": X, "shape": ints([0, -1, 2])}),
    one_op("reshape_empty_infer", "Reshape", {"x": np.zeros((0, 4, 5), np.float32)}, {"shape": ints([-1, 2, 5])}),
    # onnxruntime refuses a -1 beside a copied zero-size dim; detectron2's graphs reshape empty detections so.
    one_op("reshape_empty_copy_and_infer", "Reshape", {"x": np.zeros((0, 320), np.float32)},
           {"shape": ints([0, -1])}, expect={"y": np.zeros((0, 320), np.float32)}),
    # Known trailing dims, an unknown count (detections): the target is planned when translating, the count copied.
    one_op("reshape_planned_copy_and_infer", "Reshape", {"x": floats(3, 4, 2, 2)}, {"shape": ints([0, -1])},
           fixed={"x": [None, 4, 2, 2]}),
    one_op("reshape_planned_infer_lead", "Reshape", {"x": floats(3, 4, 2, 2)}, {"shape": ints([-1, 4, 4])},
           fixed={"x": [None, 4, 2, 2]}),
    one_op("reshape_planned_empty_copy_and_infer", "Reshape", {"x": np.zeros((0, 4, 2, 2), np.float32)},
           {"shape": ints([0, -1])}, fixed={"x": [None, 4, 2, 2]}, expect={"y": np.zeros((0, 16), np.float32)}),
    one_op("reshape_planned_static", "Reshape", {"x": X}, {"shape": ints([0, -1, 2])}, fixed={"x": [2, 3, 4]}),
    one_op("reshape_allowzero_refused", "Reshape", {"x": X}, {"shape": ints([0, -1])}, allowzero=1,
           refused="allowzero=1"),
    one_op("flatten", "Flatten", {"x": X}),
    one_op("flatten_axis0", "Flatten", {"x": X}, axis=0),
    one_op("flatten_negative_axis", "Flatten", {"x": X}, axis=-1),
    one_op("unsqueeze", "Unsqueeze", {"x": floats(2, 3)}, {"axes": ints([0, -1])}),
    one_op("unsqueeze_opset11", "Unsqueeze", {"x": floats(2, 3)}, axes=[3, 1], opset=11),
    one_op("unsqueeze_axes_at_run_time_refused", "Unsqueeze", {"x": floats(2, 3), "axes": ints([0])},
           refused="Unsqueeze node 'unsqueeze_axes_at_run_time_refused.0': the value of input 'axes' (tensor 'axes') "
                   "is only known at run time, and the handler needs it when translating"),
    one_op("squeeze", "Squeeze", {"x": floats(1, 3, 1, 2)}, {"axes": ints([-2, 0])}),
    one_op("squeeze_opset11", "Squeeze", {"x": floats(1, 3, 1, 2)}, axes=[2], opset=11),
    one_op("squeeze_all", "Squeeze", {"x": floats(1, 3, 1, 2)}),
    one_op("expand_both_ways", "Expand", {"x": floats(3, 1)}, {"shape": ints([2, 1, 4])}),
    one_op("tile", "Tile", {"x": floats(2, 3)}, {"repeats": ints([2, 1])}),
    one_op("concat_negative_axis", "Concat", {"a": floats(2, 3), "b": floats(2, 2)}, axis=-1),
    one_op("concat_empty_parts", "Concat", {"a": np.zeros((0, 3), np.float32), "b": floats(2, 3),
                                            "c": np.zeros((0, 3), np.float32)}, axis=0),
    one_op("concat_all_empty", "Concat", {"a": np.zeros((0, 3), np.float32), "b": np.zeros((0, 3), np.float32)},
           axis=0),
    conv_then("concat_nhwc_and_input", [node("Concat", ["c", "z"], axis=1)], inputs={"z": floats(1, 2, 6, 7)}),
    one_op("split_equal", "Split", {"x": floats(2, 6)}, outputs=("a", "b", "c"), axis=1),
    one_op("split_sizes", "Split", {"x": floats(4, 3)}, {"sizes": ints([1, 3])}, ("a", "b")),
    one_op("split_run_time_sizes", "Split", {"x": floats(4, 3), "sizes": ints([3, 1])}, outputs=("a", "b")),
    one_op("split_opset11", "Split", {"x": floats(4, 2)}, outputs=("a", "b", "c"), split=[2, 1, 1], opset=11),
    one_op("slice_axes_steps", "Slice", {"x": floats(4, 5, 6)},
           {"starts": ints([1, -4]), "ends": ints([INT64_MAX, -1]), "axes": ints([0, -1]), "steps": ints([1, 2])}),
    one_op("slice_negative_step", "Slice", {"x": floats(3, 5)},
           {"starts": ints([-1]), "ends": ints([np.iinfo(np.int64).min]), "axes": ints([1]), "steps": ints([-1])}),
    one_op("slice_end_past_the_dim", "Slice", {"x": floats(4, 5)},  # the RPN's top-k of fewer boxes
           {"starts": ints([1]), "ends": ints([10]), "axes": ints([0])}),
    one_op("slice_from_before_the_start", "Slice", {"x": floats(3, 5)},
           {"starts": ints([-INT64_MAX]), "ends": ints([2]), "axes": ints([1])}),
    one_op("slice_no_axes", "Slice", {"x": floats(2, 4, 3)}, {"starts": ints([0, 1]), "ends": ints([1, 3])}),
    one_op("slice_run_time_bounds", "Slice", {"x": floats(4, 5), "starts": ints([1]), "ends": ints([-1])},
           {"axes": ints([1])}),
    one_op("slice_empty_input", "Slice", {"x": np.zeros((0, 4), np.float32)},
           {"starts": ints([1]), "ends": ints([3]), "axes": ints([1])}),
    one_op("slice_axes_at_run_time_refused", "Slice",
           {"x": floats(4, 5), "starts": ints([1]), "ends": ints([3]), "axes": ints([1])},
           refused="input 'axes' (tensor 'axes') is only known at run time"),
    one_op("slice_starts_length_at_run_time_refused", "Slice",
           {"x": floats(4, 5), "starts": ints([1]), "ends": ints([3])},
           refused="the length of input 'starts' (tensor 'starts') is only known at run time"),
    one_op("transpose_default", "Transpose", {"x": X}),
    one_op("transpose_perm", "Transpose", {"x": X}, perm=[1, 0, 2]),
    one_op("constant_of_shape_default", "ConstantOfShape", {}, {"shape": ints([2, 3])}),
    Case("constant_of_shape_run_time_int64", [
        node("Shape", ["x"], ["s"]),
        node("ConstantOfShape", ["s"], value=numpy_helper.from_array(ints([7]))),
    ], {"x": floats(2, 0, 3)}),
    one_op("range_int64", "Range", {"start": ints(1), "limit": ints(10), "delta": ints(3)}),
    one_op("range_float", "Range", {"start": np.float32(0), "limit": np.float32(1), "delta": np.float32(0.25)}),
    one_op("range_negative_delta", "Range", {"start": ints(5), "limit": ints(-3), "delta": ints(-2)}),
    one_op("range_empty", "Range", {"start": ints(5), "limit": ints(5), "delta": ints(1)}),
]


# Constant, in each attribute form
def constant_case(name, consumer=None, refused=None, **value):
    """A Constant "k" with the given value attribute: the graph output, or read by `consumer` (with input "x")."""
    if consumer is None:
        return Case(name, [node("Constant", [], ["k"], **value)], {}, refused=refused)
    return Case(name, [node("Constant", [], ["k"], **value), consumer], {"x": floats(2, 3)}, refused=refused)


CONSTANT = [
    constant_case("constant_tensor", node("Add", ["x", "k"]), value=numpy_helper.from_array(floats(2, 3))),
    constant_case("constant_value_float", value_float=1.5),
    constant_case("constant_value_floats", value_floats=[1.5, -2.0]),
    constant_case("constant_value_int", value_int=-3),
    constant_case("constant_value_ints", value_ints=[4, 5]),
    constant_case("constant_value_ints_as_axes", node("Unsqueeze", ["x", "k"]), value_ints=[0, -1]),
    constant_case("constant_value_string_refused", value_string="d2tf", refused="a value_string constant"),
    constant_case("constant_sparse_value_refused", refused="a sparse_value constant",
                  sparse_value=helper.make_sparse_tensor(numpy_helper.from_array(np.float32([1.0]), "v"),
                                                         numpy_helper.from_array(ints([1]), "i"), [3])),
]

CASES = SHAPE + CONSTANT

test_handler, test_handler_in_tflite = handler_tests(CASES)
