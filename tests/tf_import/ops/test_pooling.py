"""tf_import/ops/pooling.py: MaxPool, Resize, Pad."""

import numpy as np

from tests.tf_import.op_cases import Case, conv_then, draws, handler_tests, ints, node, one_op

floats = draws(3110).floats

NEAREST = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
SCALES = {"scales": np.array([1, 1, 2, 3], np.float32)}
CASES = [
    one_op("max_pool_pads_strides", "MaxPool", {"x": floats(1, 2, 7, 7)}, kernel_shape=[3, 3], strides=[2, 2],
           pads=[1, 1, 1, 1]),
    conv_then("max_pool_nhwc", [node("MaxPool", ["c"], kernel_shape=[2, 2], strides=[2, 2])]),
    one_op("max_pool_ceil_mode_refused", "MaxPool", {"x": floats(1, 1, 5, 5)}, kernel_shape=[2, 2], ceil_mode=1,
           refused="ceil_mode"),
    Case("resize_nearest", [node("Resize", ["x", "", "scales"], **NEAREST)], {"x": floats(1, 2, 3, 4)}, SCALES),
    Case("resize_opset11", [node("Resize", ["x", "roi", "scales"], **NEAREST)], {"x": floats(1, 2, 3, 4)},
         {"roi": np.zeros(0, np.float32), **SCALES}, opset=11),
    conv_then("resize_nhwc", [node("Resize", ["c", "", "scales"], **NEAREST)], consts=SCALES),
    Case("resize_scales_at_run_time_refused", [node("Resize", ["x", "", "scales"], **NEAREST)],
         {"x": floats(1, 2, 3, 4), **SCALES}, refused="input 'scales' (tensor 'scales') is only known at run time"),
    Case("resize_half_pixel_refused", [node("Resize", ["x", "", "scales"], mode="nearest")],
         {"x": floats(1, 2, 3, 4)}, SCALES, refused="nearest resizing other than asymmetric/floor"),
    # the semantic FPN head's: bilinear, half-pixel centres, by 2 and by 4 (the borders clamp)
    Case("resize_bilinear", [node("Resize", ["x", "", "scales"], mode="linear")], {"x": floats(1, 2, 5, 6)},
         {"scales": np.array([1, 1, 2, 4], np.float32)}),
    Case("resize_bilinear_by_3_refused", [node("Resize", ["x", "", "scales"], mode="linear")],
         {"x": floats(1, 2, 3, 4)}, SCALES, refused="only powers of two"),
    Case("resize_bilinear_align_corners_refused", [node("Resize", ["x", "", "scales"], mode="linear",
                                                        coordinate_transformation_mode="align_corners")],
         {"x": floats(1, 2, 3, 4)}, {"scales": np.array([1, 1, 2, 2], np.float32)},
         refused="linear resizing other than half_pixel"),
    Case("resize_cubic_refused", [node("Resize", ["x", "", "scales"], mode="cubic")],
         {"x": floats(1, 2, 3, 4)}, {"scales": np.array([1, 1, 2, 2], np.float32)},
         refused="only nearest and linear 2-D resizing"),
    one_op("pad_constant_value", "Pad", {"x": floats(2, 3)}, {"pads": ints([1, 0, 0, 2]), "value": np.float32(1.5)}),
    one_op("pad_run_time_pads", "Pad", {"x": floats(2, 3), "pads": ints([0, 1, 2, 0])}),
    conv_then("pad_nhwc", [node("Pad", ["c", "pads"])], consts={"pads": ints([0, 0, 1, 0, 0, 0, 0, 2])}),
    one_op("pad_negative_refused", "Pad", {"x": floats(3, 3)}, {"pads": ints([-1, 0, 0, 0])},
           refused="negative pads"),
]

test_handler, test_handler_in_tflite = handler_tests(CASES)
