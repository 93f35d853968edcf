"""tf_import/ops/reduce.py: reductions, Softmax, TopK."""

import numpy as np

from tests.tf_import.op_cases import X, conv_then, draws, handler_tests, ints, node, one_op

floats = draws(3482).floats

TOP_K = ("values", "indices")
CASES = [
    one_op("reduce_max_axis", "ReduceMax", {"x": X}, axes=[1], keepdims=0),
    # graphfix's nms pass relies on the max of nothing being -inf, as in onnxruntime.
    one_op("reduce_max_empty", "ReduceMax", {"x": np.zeros((0, 3), np.float32)}, axes=[0], keepdims=0),
    one_op("reduce_mean_all", "ReduceMean", {"x": X}),
    conv_then("reduce_mean_nhwc_hw", [node("ReduceMean", ["c"], axes=[2, 3])]),
    conv_then("reduce_mean_nhwc_hw_flat", [node("ReduceMean", ["c"], axes=[-1, -2], keepdims=0)]),
    conv_then("reduce_max_nhwc_channels", [node("ReduceMax", ["c"], axes=[1])]),
    one_op("reduce_sum_axes_input", "ReduceSum", {"x": X}, {"axes": ints([0, -1])}, keepdims=0),
    one_op("reduce_sum_opset11", "ReduceSum", {"x": X}, axes=[1], opset=11),
    one_op("reduce_sum_no_axes", "ReduceSum", {"x": X}),
    one_op("reduce_sum_empty_axes", "ReduceSum", {"x": X}, {"axes": ints([])}),
    one_op("reduce_sum_empty_axes_noop", "ReduceSum", {"x": X}, {"axes": ints([])}, noop_with_empty_axes=1),
    one_op("reduce_sum_axes_at_run_time_refused", "ReduceSum", {"x": X, "axes": ints([1])},
           refused="input 'axes' (tensor 'axes') is only known at run time"),
    one_op("softmax", "Softmax", {"x": X}),
    one_op("softmax_axis1", "Softmax", {"x": X}, axis=1),
    one_op("softmax_opset12_refused", "Softmax", {"x": X}, opset=12,
           refused="opset 12's Softmax differs from the opset-13 form"),
    # Ties: both keep the lower index first.
    one_op("top_k_ties", "TopK", {"x": np.array([[3, 1, 3, 2, 1, 3], [0, 0, 0, 0, 0, 0]], np.float32)},
           {"k": ints([4])}, TOP_K),
    one_op("top_k_axis1", "TopK", {"x": floats(2, 5, 3)}, {"k": ints([2])}, TOP_K, axis=1),
    one_op("top_k_axis_negative", "TopK", {"x": floats(4, 3)}, {"k": ints([3])}, TOP_K, axis=-2),
    one_op("top_k_empty", "TopK", {"x": np.zeros(0, np.float32)}, {"k": ints([0])}, TOP_K),
    one_op("top_k_empty_axis0", "TopK", {"x": np.zeros((0, 3), np.float32)}, {"k": ints([0])}, TOP_K, axis=0),
    one_op("top_k_run_time_k", "TopK", {"x": floats(2, 6), "k": ints([3])}, outputs=TOP_K),
    one_op("top_k_smallest_refused", "TopK", {"x": floats(5)}, {"k": ints([2])}, TOP_K, largest=0,
           refused="smallest-k"),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
