"""tf_import/ops/conv.py: Conv, ConvTranspose, BatchNormalization."""

from tests.tf_import.op_cases import Case, conv_then, draws, handler_tests, node, one_op

floats, positive = draws(819)

BN = {"gamma": positive(4), "beta": floats(4), "mean": floats(4), "var": positive(4)}
CASES = [
    one_op("conv_pads_strides", "Conv", {"x": floats(1, 3, 7, 8)}, {"w": floats(4, 3, 3, 3), "b": floats(4)},
           pads=[1, 0, 2, 1], strides=[2, 1]),
    one_op("conv_dilations_no_bias", "Conv", {"x": floats(2, 2, 9, 9)}, {"w": floats(3, 2, 3, 3)},
           dilations=[2, 2]),
    one_op("conv_grouped", "Conv", {"x": floats(1, 8, 5, 6)}, {"w": floats(12, 2, 3, 3), "b": floats(12)}, group=4,
           pads=[1, 1, 1, 1], strides=[2, 2]),
    one_op("conv_group_not_dividing_refused", "Conv", {"x": floats(1, 6, 5, 5)}, {"w": floats(4, 2, 3, 3)}, group=3,
           refused="group=3 does not divide the 4 output channels"),
    one_op("conv_transpose_group_refused", "ConvTranspose", {"x": floats(1, 4, 5, 5)}, {"w": floats(4, 1, 2, 2)},
           group=2, refused="group=2"),
    one_op("conv_weights_at_run_time_refused", "Conv", {"x": floats(1, 3, 5, 5), "w": floats(2, 3, 1, 1)},
           refused="input 'W' (tensor 'w') is only known at run time"),
    one_op("conv_transpose_stride2", "ConvTranspose", {"x": floats(1, 3, 4, 5)},
           {"w": floats(3, 2, 2, 2), "b": floats(2)}, strides=[2, 2]),
    # the keypoint head's: kernel 4, stride 2, pads 1 doubles the map
    one_op("conv_transpose_pads", "ConvTranspose", {"x": floats(1, 3, 4, 5)}, {"w": floats(3, 2, 4, 4)},
           strides=[2, 2], pads=[1, 1, 1, 1]),
    one_op("conv_transpose_uneven_pads", "ConvTranspose", {"x": floats(1, 3, 4, 5)}, {"w": floats(3, 2, 3, 3)},
           pads=[0, 1, 2, 0]),
    one_op("conv_transpose_output_padding_refused", "ConvTranspose", {"x": floats(1, 3, 4, 5)},
           {"w": floats(3, 2, 3, 3)}, strides=[2, 2], output_padding=[1, 1], refused="output_padding or output_shape"),
    one_op("batch_norm_nchw", "BatchNormalization", {"x": floats(2, 4, 3, 5)}, BN, epsilon=1e-3),
    one_op("batch_norm_2d", "BatchNormalization", {"x": floats(3, 4)}, BN),
    conv_then("batch_norm_nhwc", [node("BatchNormalization", ["c", *BN]), node("Relu", ["y"], ["r"])],
              consts=BN),
    Case("batch_norm_stats_at_run_time_refused", [node("BatchNormalization", ["x", "gamma", "beta", "mean", "var"])],
         {"x": floats(2, 4), "mean": floats(4)}, {k: BN[k] for k in ("gamma", "beta", "var")},
         refused="input 'input_mean' (tensor 'mean') is only known at run time"),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
