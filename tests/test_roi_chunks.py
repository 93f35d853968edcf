"""tf_import/roi_chunks.py: which nodes TFLite runs a chunk of boxes at a time, on graphs built by hand. (That the
chunked TFLite form computes what onnxruntime does: tests/tf_import/ops/test_roi_align.py,
roi_align_head_in_chunks_*.)"""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tf_import import roi_chunks

FLOAT = onnx.TensorProto.FLOAT


def model(nodes, consts, outputs=("out",), channels=16):
    """A graph reading feature map x [1, channels, 10, 10] and boxes [N, 4] with their batch indices [N]."""
    inputs = [helper.make_tensor_value_info("x", FLOAT, [1, channels, 10, 10]),
              helper.make_tensor_value_info("rois", FLOAT, ["N", 4]),
              helper.make_tensor_value_info("batch", onnx.TensorProto.INT64, ["N"])]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_value_info(name, onnx.TypeProto()) for name in outputs],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])


def roi_align(output="r", x="x"):
    return helper.make_node("RoiAlign", [x, "rois", "batch"], [output], output_height=4, output_width=4,
                            sampling_ratio=2, spatial_scale=0.5, name="pool")


HEAD = {"w": np.ones((8, 16, 1, 1)), "fc": np.ones((8, 5)), "fcb": np.ones(5)}


def head(then):
    """RoiAlign -> 1x1 Conv -> Relu -> ReduceMean over H, W -> Gemm ("g"), then the nodes `then`."""
    return [roi_align(), helper.make_node("Conv", ["r", "w"], ["c"]), helper.make_node("Relu", ["c"], ["a"]),
            helper.make_node("ReduceMean", ["a"], ["m"], axes=[2, 3], keepdims=0),
            helper.make_node("Gemm", ["m", "fc", "fcb"], ["g"]), *then]


def members(region):
    return [node.output[0] for node in region.members]


def test_a_box_head_is_one_region_up_to_the_first_node_that_mixes_boxes():
    # Transpose is not among the ops that keep boxes apart: the region ends before it, and the Gemm's output is
    # what leaves it.
    (region,) = roi_chunks.regions(model(head([helper.make_node("Transpose", ["g"], ["out"], perm=[1, 0])]), HEAD))
    assert members(region) == ["r", "c", "a", "m", "g"]
    assert [(name, shape) for name, _, shape in region.outputs] == [("g", (5,))]
    assert region.entry.name == "pool"
    # per box: r 16x4x4 floats, c and a 8x4x4, m 8, g 5, in bytes 1024 + 512 + 512 + 32 + 20; and RoIAlign's 12
    # gathered tensors of 16 channels sampled 8x8: 12 * 4 * 16 * 64 = 49152. 256 MiB // 51252 bytes = 5237 boxes.
    assert region.rows == 5237


def test_each_value_read_outside_leaves_the_region_and_graph_outputs_do_too():
    nodes = head([helper.make_node("Transpose", ["a"], ["t"], perm=[1, 0, 2, 3]),
                  helper.make_node("Identity", ["g"], ["out"])])
    (region,) = roi_chunks.regions(model(nodes, HEAD))
    assert members(region) == ["r", "c", "a", "m", "g", "out"]
    assert [name for name, _, _ in region.outputs] == ["a", "out"]


def test_a_value_read_by_a_loop_body_leaves_the_region():
    body = helper.make_graph([helper.make_node("Add", ["m", "m"], ["sum"]),
                              helper.make_node("Identity", ["going"], ["going_out"])], "body",
                             [helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
                              helper.make_tensor_value_info("going", onnx.TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("going_out", onnx.TensorProto.BOOL, []),
                              helper.make_tensor_value_info("sum", FLOAT, None)])
    loop = helper.make_node("Loop", ["", "cond"], ["out"], body=body)
    nodes = [helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(False))),
             *head([]), loop]
    (region,) = roi_chunks.regions(model(nodes, HEAD))
    assert [name for name, _, _ in region.outputs] == ["m"]  # g is read by nothing


def test_a_constant_node_after_the_roialign_is_read_inside_the_body():
    scale = numpy_helper.from_array(np.float32(2.0))
    nodes = [roi_align(), helper.make_node("Constant", [], ["two"], value=scale),
             helper.make_node("Mul", ["r", "two"], ["s"]),
             helper.make_node("Transpose", ["s"], ["out"], perm=[1, 0, 2, 3])]
    (region,) = roi_chunks.regions(model(nodes, {}))
    assert members(region) == ["r", "s"]
    assert [node.output[0] for node in region.body.node] == ["two", "r", "s"]
    assert region.reads == {"x", "rois", "batch"}


def stops_at(node, consts=()):
    """The members of the region of RoiAlign ("r") -> `node` -> Identity ("out")."""
    nodes = [roi_align(), node, helper.make_node("Identity", [node.output[0]], ["out"])]
    extra = {name: value for name, value in consts}
    (region,) = roi_chunks.regions(model(nodes, extra))
    return members(region)


def test_nodes_that_mix_boxes_or_read_other_values_end_the_region():
    one_per_box = np.ones((5, 16, 1, 1))  # a constant with a box axis of its own (5 rows, not 1)
    for node, consts in [
        (helper.make_node("ReduceMean", ["r"], ["n"], axes=[0, 2]), ()),  # over the boxes
        (helper.make_node("ReduceMean", ["r"], ["n"]), ()),  # over every axis
        (helper.make_node("Add", ["r", "rois"], ["n"]), ()),  # a value computed outside the region
        (helper.make_node("Add", ["r", "k"], ["n"]), [("k", one_per_box)]),
        (helper.make_node("Flatten", ["r"], ["n"], axis=0), ()),
        (helper.make_node("Reshape", ["r", "shape"], ["n"]), [("shape", np.array([-1, 256]))]),  # not a known op
        (helper.make_node("Gemm", ["f", "fc"], ["n"], transA=1), [("fc", np.ones((7, 5)))]),
    ]:
        if node.op_type == "Gemm":  # on the flattened boxes: transA makes the boxes Gemm's inner axis
            nodes = [roi_align(), helper.make_node("Flatten", ["r"], ["f"]), node,
                     helper.make_node("Identity", ["n"], ["out"])]
            (region,) = roi_chunks.regions(model(nodes, dict(consts)))
            assert members(region) == ["r", "f"], node
            continue
        assert stops_at(node, consts) == ["r"], node


def test_nodes_that_keep_boxes_apart_join_it():
    per_channel = np.ones((1, 16, 1, 1))
    for node, consts in [
        (helper.make_node("Add", ["r", "k"], ["n"]), [("k", per_channel)]),
        (helper.make_node("Mul", ["r", "k"], ["n"]), [("k", np.ones(4))]),
        (helper.make_node("ReduceMax", ["r"], ["n"], axes=[-1]), ()),
        (helper.make_node("MaxPool", ["r"], ["n"], kernel_shape=[2, 2]), ()),
        (helper.make_node("Flatten", ["r"], ["n"]), ()),
    ]:
        assert stops_at(node, consts) == ["r", "n", "out"], node


def test_a_roialign_whose_output_shape_is_not_static_is_left_unchunked():
    nodes = [roi_align(), helper.make_node("Identity", ["r"], ["out"])]
    unknown = model(nodes, {})
    unknown.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "C"  # channels known only at run time
    assert roi_chunks.regions(unknown) == []
    assert len(roi_chunks.regions(model(nodes, {}))) == 1
