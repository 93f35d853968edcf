"""Every tf_import handler against onnxruntime, one small graph (a case) at a time.

All cases are translated and run in one TensorFlow subprocess (tests/ops_runner.py), once per session; each test
then compares one case's outputs with onnxruntime's, run here (TensorFlow never runs in this process). A case's
input dims are unknown when translating, as the image size is in a real pb, unless the case fixes them.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "ops_runner.py"
INT64_MAX = np.iinfo(np.int64).max
# float32 kernels of TF and onnxruntime differ by a few ulps (summation order, exp/log approximations).
RTOL, ATOL = 1e-5, 1e-6


@dataclasses.dataclass
class Case:
    name: str
    nodes: list
    inputs: dict  # graph inputs: name -> array
    consts: dict = dataclasses.field(default_factory=dict)  # initializers: name -> array
    opset: int = 16  # default-domain opset; None imports none
    fixed: dict = dataclasses.field(default_factory=dict)  # input name -> shape when translating (None: unknown)
    refused: str = None  # text of the expected one-line refusal
    expect: dict = None  # outputs, where onnxruntime cannot be the oracle

    def __post_init__(self):
        self.inputs = {name: np.asarray(value) for name, value in self.inputs.items()}
        self.consts = {name: np.asarray(value) for name, value in self.consts.items()}

    def model(self):
        nodes = [onnx.NodeProto() for _ in self.nodes]
        for i, (node, source) in enumerate(zip(nodes, self.nodes)):
            node.CopyFrom(source)
            node.name = node.name or f"{self.name}.{i}"
        inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype),
                                                [f"{name}_{d}" if dim is None else dim for d, dim in
                                                 enumerate(self.fixed.get(name, [None] * array.ndim))])
                  for name, array in self.inputs.items()]
        outputs = [helper.make_value_info(name, onnx.TypeProto()) for name in self.nodes[-1].output]
        graph = helper.make_graph(nodes, self.name, inputs, outputs,
                                  [numpy_helper.from_array(a, name) for name, a in self.consts.items()])
        opsets = [helper.make_opsetid("", self.opset)] if self.opset else []
        return helper.make_model(graph, opset_imports=opsets)


def node(op_type, inputs, outputs=("y",), **attrs):
    return helper.make_node(op_type, list(inputs), list(outputs), **attrs)


RNG = np.random.default_rng(0)


def floats(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def positive(*shape):
    return np.abs(floats(*shape)) + np.float32(0.1)


def ints(values, dtype=np.int64):
    return np.array(values, dtype)


def one_op(name, op_type, inputs, consts=None, outputs=("y",), **kwargs):
    """A case of one node whose inputs are the graph inputs, then the initializers, in the order given."""
    consts = consts or {}
    case_fields = {k: kwargs.pop(k) for k in list(kwargs) if k in Case.__dataclass_fields__}
    return Case(name, [node(op_type, [*inputs, *consts], outputs, **kwargs)], inputs, consts, **case_fields)


# ---- elementwise ----
X = floats(2, 3, 4)
ELEMENTWISE = [
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

# ---- channels-last: values a Conv made, held NHWC through layout-free ops until a layout-bound one ----
IMAGE = floats(1, 3, 6, 7)
CONV = {"w": floats(4, 3, 3, 3), "wb": floats(4)}  # same-padded: output [1, 4, 6, 7]
PAD1 = {"pads": [1, 1, 1, 1]}


def conv_then(name, nodes, inputs=None, consts=None, **kwargs):
    """`nodes` reading "c", a Conv of the [1, 3, 6, 7] graph input "x" to [1, 4, 6, 7]."""
    return Case(name, [node("Conv", ["x", "w", "wb"], ["c"], **PAD1), *nodes], {"x": IMAGE, **(inputs or {})},
                {**CONV, **(consts or {})}, **kwargs)


LAYOUT = [
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

# ---- convolutions, BatchNormalization, Gemm ----
BN = {"gamma": positive(4), "beta": floats(4), "mean": floats(4), "var": positive(4)}
CONVOLUTION = [
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
    one_op("gemm_transb_alpha_beta", "Gemm", {"a": floats(3, 4)}, {"b": floats(5, 4), "c": floats(5)}, transB=1,
           alpha=0.5, beta=2.0),
    one_op("gemm_run_time_b", "Gemm", {"a": floats(3, 4), "b": floats(5, 4), "c": floats(3, 5)}, transB=1),
    one_op("gemm_transa_refused", "Gemm", {"a": floats(4, 3), "b": floats(4, 5)}, transA=1, refused="transA=1"),
]

# ---- pooling, resizing, padding ----
NEAREST = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
SCALES = {"scales": np.array([1, 1, 2, 3], np.float32)}
POOLING = [
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

# ---- reductions, Softmax, TopK ----
TOP_K = ("values", "indices")
REDUCE = [
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

# ---- indexing ----
EMPTY_INDICES = np.zeros(0, np.int64)
INDEXING = [
    one_op("gather_negative_indices", "Gather", {"x": floats(5, 3), "i": ints([-1, 0, 2, -5])}),
    one_op("gather_axis1_2d_indices", "Gather", {"x": floats(2, 4, 3), "i": ints([[0, 3], [-2, 1]])}, axis=1),
    one_op("gather_scalar_index_negative_axis", "Gather", {"x": floats(2, 4, 3)}, {"i": ints(-1)}, axis=-1),
    one_op("gather_empty_indices", "Gather", {"x": floats(5, 3), "i": EMPTY_INDICES}),
    one_op("gather_empty_data", "Gather", {"x": np.zeros((0, 3), np.float32), "i": ints([2, 0])}, axis=1),
    one_op("gather_empty_data_and_indices", "Gather", {"x": np.zeros((0, 3), np.float32), "i": EMPTY_INDICES}),
    one_op("gather_nd_negative", "GatherND", {"x": floats(2, 3, 4), "i": ints([[0, 1], [1, -1], [-2, 0]])}),
    one_op("gather_nd_batch_dims", "GatherND", {"x": floats(2, 3, 4), "i": ints([[[1]], [[-3]]])}, batch_dims=1),
    one_op("scatter_nd_negative", "ScatterND", {"x": floats(4, 3), "i": ints([[1], [-1]]), "u": floats(2, 3)},
           fixed={"i": (None, 1)}),  # TFLite's form needs the index depth
    one_op("scatter_nd_no_updates", "ScatterND",  # an FPN level without boxes
           {"x": floats(4, 3), "i": np.zeros((0, 1), np.int64), "u": np.zeros((0, 3), np.float32)},
           fixed={"i": (None, 1)}),
    one_op("scatter_nd_add_refused", "ScatterND", {"x": floats(4, 3), "i": ints([[1]]), "u": floats(1, 3)},
           reduction="add", refused="reduction=add"),
    one_op("non_zero", "NonZero", {"x": np.array([[0, 1.5, 0], [2, 0, -1]], np.float32)}),
    one_op("non_zero_empty", "NonZero", {"x": np.zeros((0, 3), np.float32)}),
    one_op("non_zero_none", "NonZero", {"x": np.zeros((2, 2), np.int64)}),
    one_op("one_hot", "OneHot", {"i": ints([-1, 0, 2, 5])},
           {"depth": ints([4]), "values": np.array([0, 5], np.float32)}),
    one_op("one_hot_axis0", "OneHot", {"i": ints([[1, -4], [3, 0]], np.int32)},
           {"depth": np.float32(4), "values": np.float32([-1, 1])}, axis=0),
]

# ---- NonMaxSuppression: batch and class counts must be known (the handler unrolls one NMS per pair), so these cases
# fix their input dims. The box head's NMS has a batch per class (export/per_class_nms.py). ----
NMS_BOXES = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 2, 1, 3], [0, 2.05, 1, 3.05], [5, 5, 6, 6]]], np.float32)
NMS_SCORES = np.array([[[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.95, 0.3, 0.85, 0.2]]], np.float32)
NMS = {"boxes": NMS_BOXES, "scores": NMS_SCORES}
# Three batches of their own boxes, one class each: batch 1's boxes overlap where batch 0's do not.
NMS_BATCHES = {"boxes": np.concatenate([NMS_BOXES, NMS_BOXES[:, ::-1] * 0.5, NMS_BOXES + 1]),
               "scores": np.concatenate([NMS_SCORES[:, :1], NMS_SCORES[:, 1:], NMS_SCORES[:, :1] * 0.3])}
NMS_BOTH = {"boxes": NMS_BATCHES["boxes"][:2], "scores": np.concatenate([NMS_SCORES, NMS_SCORES[:, ::-1]])}
NO_BOXES = {"boxes": np.zeros((1, 0, 4), np.float32), "scores": np.zeros((1, 2, 0), np.float32)}
LIMITS = {"max": ints([2]), "iou": np.float32(0.5)}


def counts(batches, classes):
    return {"fixed": {"boxes": (batches, None, 4), "scores": (batches, classes, None)}}


NON_MAX_SUPPRESSION = [
    one_op("nms", "NonMaxSuppression", NMS, {"max": ints([2]), "iou": np.array([0.5], np.float32)}, **counts(1, 2)),
    one_op("nms_torchvision_limit", "NonMaxSuppression", NMS, {"max": ints([INT64_MAX]), "iou": np.float32(0.3)},
           **counts(1, 2)),
    one_op("nms_no_limit", "NonMaxSuppression", NMS, **counts(1, 2)),  # ONNX's default limit: 0 boxes
    one_op("nms_no_boxes", "NonMaxSuppression", NO_BOXES, {"max": ints([10]), "iou": np.float32(0.5)},
           **counts(1, 2)),
    one_op("nms_score_threshold", "NonMaxSuppression", NMS, {**LIMITS, "low": np.float32(0.75)}, **counts(1, 2)),
    one_op("nms_batches", "NonMaxSuppression", NMS_BATCHES,
           {"max": ints([3]), "iou": np.float32(0.1), "low": np.float32(0.2)}, **counts(3, 1)),
    one_op("nms_batches_and_classes", "NonMaxSuppression", NMS_BOTH,
           {"max": ints([INT64_MAX]), "iou": np.float32(0.5), "low": np.float32(0.0)}, **counts(2, 2)),
    one_op("nms_counts_unknown_refused", "NonMaxSuppression", NMS, LIMITS, refused="batch or class count unknown"),
    one_op("nms_center_point_box_refused", "NonMaxSuppression", NMS, LIMITS, center_point_box=1, **counts(1, 2),
           refused="center_point_box=1"),
]

# ---- RoiAlign: feature coordinates are image ones * spatial_scale; boxes partly off the map, one tiny ----
BOXES = np.array([[2, 2, 12, 10], [0, 0, 23, 19], [-4, -2, 8, 6], [6, 8, 7, 8.4]], np.float32)
ROIS = {"rois": BOXES, "batch": ints([0, 1, 1, 0])}
NO_ROIS = {"rois": np.zeros((0, 4), np.float32), "batch": EMPTY_INDICES}
ALIGN = {"output_height": 3, "output_width": 2, "spatial_scale": 0.5, "coordinate_transformation_mode": "half_pixel"}
FEATURES = {"x": floats(2, 3, 10, 12)}
CHANNELS = {"x": (None, 3, None, None)}  # known in a real graph: sampling_ratio=0 needs them
CHUNKED_BOXES = np.concatenate([BOXES * (1 + i / 4) for i in range(12)])[:45] * 1.5
ROI_ALIGN = [
    *[one_op(f"roi_align_ratio{ratio}{suffix}", "RoiAlign", {**FEATURES, **rois}, sampling_ratio=ratio,
             fixed=CHANNELS, **ALIGN)
      for ratio in (2, 0) for suffix, rois in (("", ROIS), ("_no_boxes", NO_ROIS))],
    # A box of no area (a degenerate proposal): the adaptive grid has no sample in it and gives 0 (onnxruntime),
    # tensorpack's 2x2 samples all read its one point.
    *[one_op(f"roi_align_empty_box_ratio{ratio}", "RoiAlign",
             {**FEATURES, "rois": np.float32([[8, 6, 8, 6], [2, 2, 12, 10], [5, 5, 5, 9]]), "batch": ints([1, 0, 1])},
             sampling_ratio=ratio, fixed=CHANNELS, **ALIGN)
      for ratio in (2, 0)],
    conv_then("roi_align_nhwc", [node("RoiAlign", ["c", "rois", "batch"], sampling_ratio=0, **ALIGN)],
              inputs={"rois": BOXES, "batch": ints([0, 0, 0, 0])}),
    one_op("roi_align_ratio0_channels_unknown_refused", "RoiAlign", {**FEATURES, **ROIS}, sampling_ratio=0,
           **ALIGN, refused="channel count unknown"),
    # Unaligned (ROIAlign v1): no half-pixel shift, boxes at least one feature pixel wide (the last one is not).
    *[one_op(f"roi_align_unaligned_ratio{ratio}", "RoiAlign", {**FEATURES, **ROIS}, sampling_ratio=ratio,
             fixed=CHANNELS, **{**ALIGN, "coordinate_transformation_mode": "output_half_pixel"})
      for ratio in (2, 0)],
    # For TFLite, RoiAlign and the per-box nodes after it run a chunk of boxes at a time (tf_import/roi_chunks.py):
    # 64 channels sampled 64x64 make a chunk 20 boxes, so these 45 run in three, the last one short. Positive
    # weights: no cancellation, so float32's round-off stays within the cases' tolerance.
    *[Case(f"roi_align_head_in_chunks_ratio{ratio}", [
        node("RoiAlign", ["x", "rois", "batch"], ["r"], sampling_ratio=ratio, output_height=32, output_width=32,
             spatial_scale=0.5), node("Conv", ["r", "w"], ["c"]), node("Relu", ["c"], ["a"]),
        node("ReduceMean", ["a"], ["m"], axes=[2, 3], keepdims=0), node("Gemm", ["m", "fc", "fcb"], ["g"]),
        node("Transpose", ["g"], perm=[1, 0])],
        {"x": floats(2, 64, 20, 24), "rois": CHUNKED_BOXES, "batch": ints(np.arange(len(CHUNKED_BOXES)) ** 2 // 7 % 2)},
        {"w": positive(8, 64, 1, 1), "fc": positive(8, 5), "fcb": floats(5)}, fixed={"x": (None, 64, None, None)})
      for ratio in (2, 0)],
    one_op("roi_align_max_refused", "RoiAlign", {**FEATURES, **ROIS}, mode="max", **ALIGN,
           refused="RoiAlign max with coordinate_transformation_mode=half_pixel"),
    one_op("roi_align_opset15_refused", "RoiAlign", {**FEATURES, **ROIS}, opset=15, sampling_ratio=2,
           refused="opset 15's RoiAlign differs from the opset-16 form"),
]

# ---- shapes and layouts ----
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


# ---- Constant, in each attribute form ----
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

# ---- control flow: Loop bodies (hand-made subgraphs), Identity ----
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
CONTROL_FLOW = [
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

# ---- the Translator itself ----
TRANSLATOR = [
    one_op("opset10_refused", "Relu", {"x": X}, opset=10, refused="imports ONNX opset 10 (ai.onnx); d2tf translates "
                                                                  "opsets 11 to 17"),
    one_op("opset18_refused", "Relu", {"x": X}, opset=18, refused="imports ONNX opset 18"),
    one_op("no_default_opset_refused", "Relu", {"x": X}, opset=None, refused="imports no default-domain"),
    one_op("unknown_op_refused", "Hardmax", {"x": X}, refused="no handler for op type Hardmax"),
    one_op("custom_domain_refused", "Relu", {"x": X}, domain="com.example", refused="domain(s) ['com.example']"),
    Case("rank_at_run_time_refused", [node("Reshape", ["x", "shape"], ["r"]), node("Transpose", ["r"])],
         {"x": X, "shape": ints([4, 6])}, refused="the rank of input 'data' (tensor 'r') is only known at run time"),
]

CASES = ELEMENTWISE + LAYOUT + CONVOLUTION + POOLING + REDUCE + INDEXING + NON_MAX_SUPPRESSION + ROI_ALIGN + SHAPE \
    + CONSTANT + CONTROL_FLOW + TRANSLATOR


# The handlers with a form of their own for TFLite (tf_import.ops.for_tflite), those whose TF form TFLite's
# converter got wrong, and Loop (TFLite's WHILE): their cases run converted to TFLite too.
TFLITE_OPS = {"Conv", "Div", "Reshape", "Split", "Slice", "RoiAlign", "NonMaxSuppression", "ScatterND", "Loop"}
# nhwc_constants casts to float64, which TFLite's kernels do not take; the Loop handler refuses scan outputs for TFLite
NOT_IN_TFLITE = {"nhwc_constants", "loop_scan_outputs", "loop_scan_outputs_no_iterations"}
TFLITE_CASES = [case for case in CASES if not case.refused and {n.op_type for n in case.nodes} & TFLITE_OPS
                and case.name not in NOT_IN_TFLITE]


def run_cases(directory, cases, *flags):
    """The folder of `cases`' results from one tests/ops_runner.py process."""
    for case in cases:
        folder = directory / case.name
        folder.mkdir()
        onnx.save(case.model(), folder / "model.onnx")
        np.savez(folder / "inputs.npz", **case.inputs)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, RUNNER, directory, *flags], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


@pytest.fixture(scope="session")
def translated(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("ops"), CASES)


@pytest.fixture(scope="session")
def in_tflite(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("ops_tflite"), TFLITE_CASES, "--tflite")


def onnxruntime_outputs(case):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the kernels, nothing fused
    session = ort.InferenceSession(case.model().SerializeToString(), options, providers=["CPUExecutionProvider"])
    return {output.name: value for output, value in zip(session.get_outputs(), session.run(None, case.inputs))}


def test_case_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_handler(case, translated):
    folder = translated / case.name
    error = json.loads((folder / "error.json").read_text()) if (folder / "error.json").exists() else None
    if case.refused:
        assert error, "translated, but should have been refused"
        assert error["refused"], error["message"]
        assert case.refused in error["message"] and "\n" not in error["message"]
        return
    assert_outputs(folder, case)


@pytest.mark.parametrize("case", TFLITE_CASES, ids=lambda case: case.name)
def test_handler_in_tflite(case, in_tflite):
    assert_outputs(in_tflite / case.name, case)


def assert_outputs(folder, case):
    """The case ran, and its outputs equal onnxruntime's (or the case's expected ones)."""
    error = folder / "error.json"
    assert not error.exists(), json.loads(error.read_text())["message"]
    got = dict(np.load(folder / "outputs.npz"))
    want = case.expect or onnxruntime_outputs(case)
    assert list(got) == list(want)
    for name, expected in want.items():
        assert (got[name].dtype, got[name].shape) == (expected.dtype, expected.shape), name
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(got[name], expected, rtol=RTOL, atol=ATOL, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], expected, err_msg=name)


def test_every_handler_has_a_case(translated):
    registered = set(json.loads((translated / "ops.json").read_text()))
    translated_ops = {n.op_type for case in CASES if not case.refused for n in case.nodes}
    assert registered - translated_ops == set(), "handlers without a case that translates them"
