"""Each graphfix pass alone, on small hand-built (or traced) graphs, checked in onnxruntime."""

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from core import D2TFError
from graphfix.passes import cleanup, foldbn, nms, roialign, shapes

OPSET = [helper.make_opsetid("", 16)]


def _run(model, **feeds):
    sess = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _copy(model):
    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    return clone


def _ops(model):
    return [n.op_type for n in model.graph.node]


# --- roialign ------------------------------------------------------------------------------------------------------

def _roialign_model(sampling_ratio=0, mode="half_pixel", size=7):
    node = helper.make_node("RoiAlign", ["x", "rois", "idx"], ["y"], name="pool", output_height=size,
                            output_width=size, sampling_ratio=sampling_ratio, spatial_scale=0.25,
                            coordinate_transformation_mode=mode)
    graph = helper.make_graph(
        [node], "roialign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, "h", "w"]),
         helper.make_tensor_value_info("rois", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("idx", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, size, size])],
    )
    return helper.make_model(graph, opset_imports=OPSET)


def _tensorpack_roialign(features, boxes, size, scale):
    """tensorpack's construction, written from the contract (section 4): for each bin, 2x2 bilinear samples, the
    first at x0 + w/(4S) - 0.5 with spacing w/(2S); samples within [-1, dim] read the border-clamped map (tensorpack
    pads it by one pixel, SYMMETRIC), samples further out read 0 (crop_and_resize's extrapolation)."""
    c, h, w = features.shape
    out = np.zeros((len(boxes), c, size, size), np.float64)
    for n, box in enumerate(boxes * scale):
        x0, y0, x1, y1 = box
        ys = y0 + (y1 - y0) / (4 * size) - 0.5 + np.arange(2 * size) * (y1 - y0) / (2 * size)
        xs = x0 + (x1 - x0) / (4 * size) - 0.5 + np.arange(2 * size) * (x1 - x0) / (2 * size)
        samples = np.array([[_bilinear(features, y, x) for x in xs] for y in ys]).transpose(2, 0, 1)  # c, 2S, 2S
        out[n] = samples.reshape(c, size, 2, size, 2).mean(axis=(2, 4))
    return out


def _bilinear(features, y, x):
    c, h, w = features.shape
    if not (-1 <= y <= h and -1 <= x <= w):
        return np.zeros(c)
    y, x = min(max(y, 0), h - 1), min(max(x, 0), w - 1)
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * features[:, y0, x0] + (1 - ly) * lx * features[:, y0, x1]
            + ly * (1 - lx) * features[:, y1, x0] + ly * lx * features[:, y1, x1])


def _roialign_inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 2, 12, 15)).astype(np.float32)
    corners = rng.uniform(-12, 64, size=(40, 2, 2))  # image pixels; includes boxes partly outside the 48x60 map
    sizes = np.concatenate([rng.uniform(0.2, 3, size=(10, 2)), rng.uniform(3, 50, size=(30, 2))])  # sub-pixel ones
    rois = np.concatenate([corners[:, 0], corners[:, 0] + sizes], axis=1).astype(np.float32)
    return x, rois, np.zeros(len(rois), np.int64)


def test_roialign_tensorpack_mode_computes_tensorpacks_construction():
    model = roialign.run(_roialign_model(), roialign="tensorpack")
    assert onnx.helper.get_attribute_value(next(a for a in model.graph.node[0].attribute
                                                if a.name == "sampling_ratio")) == 2
    onnx.checker.check_model(model, full_check=True)
    x, rois, idx = _roialign_inputs()
    (got,) = _run(model, x=x, rois=rois, idx=idx)
    expected = _tensorpack_roialign(x[0].astype(np.float64), rois.astype(np.float64), 7, 0.25)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    (adaptive,) = _run(_roialign_model(), x=x, rois=rois, idx=idx)
    assert np.abs(adaptive - got).max() > 1e-3, "the two semantics differ on large boxes, so this test can fail"


def test_roialign_exact_mode_keeps_the_adaptive_grid():
    original = _roialign_model()
    model = roialign.run(_copy(original), roialign="exact")
    assert model == original


def test_roialign_switches_a_fixed_graph_back_and_forth():
    """verify measures the other mode by re-running the pass on the fixed graph: the switch must be exact both ways."""
    original = _roialign_model()
    tensorpack = roialign.run(_copy(original), roialign="tensorpack")
    assert roialign.run(_copy(tensorpack), roialign="exact") == original
    assert roialign.run(_copy(roialign.run(_copy(tensorpack), roialign="exact")), roialign="tensorpack") == tensorpack


@pytest.mark.parametrize("mode", ["tensorpack", "exact"])
def test_roialign_leaves_unaligned_roialign_as_exported(mode):
    """detectron2's ROIAlign v1 (the Detectron1 comparisons) samples 2x2 per bin, and tensorpack has no unaligned
    RoIAlign: both modes keep the exported node."""
    original = _roialign_model(sampling_ratio=2, mode="output_half_pixel")
    assert roialign.run(_copy(original), roialign=mode) == original


def test_roialign_switches_every_roialign_node():
    """FPN pools each level with a RoiAlign of its own, and the mask head with four more: every one switches."""
    model = _roialign_model()
    for level in range(1, 4):
        node = onnx.NodeProto()
        node.CopyFrom(model.graph.node[0])
        node.name, node.output[0] = f"pool{level}", f"y{level}"
        model.graph.node.append(node)
    for mode, ratio in (("tensorpack", 2), ("exact", 0)):
        roialign.run(model, roialign=mode)
        assert [[a.i for a in n.attribute if a.name == "sampling_ratio"] for n in model.graph.node] == [[ratio]] * 4


def test_roialign_refuses_unknown_modes():
    with pytest.raises(D2TFError, match="coordinate_transformation_mode=asymmetric"):
        roialign.run(_roialign_model(mode="asymmetric"))
    with pytest.raises(D2TFError, match="--roialign must be one of"):
        roialign.run(_roialign_model(), roialign="fast")


# --- nms -----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def traced_batched_nms():
    """torchvision's batched_nms as the tracer leaves it: NonMaxSuppression inside an empty-input If guard."""
    import io

    import torch
    import torchvision

    class BatchedNMS(torch.nn.Module):
        def forward(self, boxes, scores, classes):
            return torchvision.ops.batched_nms(boxes, scores, classes, 0.5)

    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    boxes, scores, classes = _nms_inputs(rng, 20)
    torch.onnx.export(BatchedNMS(), tuple(map(torch.from_numpy, (boxes, scores, classes))), buf, dynamo=False,
                      opset_version=16, input_names=["boxes", "scores", "classes"], output_names=["keep"],
                      dynamic_axes={"boxes": {0: "n"}, "scores": {0: "n"}, "classes": {0: "n"}, "keep": {0: "k"}})
    return onnx.load_from_string(buf.getvalue())


def _nms_inputs(rng, n):
    xy = rng.uniform(0, 100, size=(n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, size=(n, 2))], axis=1).astype(np.float32)
    return boxes, rng.uniform(size=n).astype(np.float32), rng.integers(0, 3, size=n).astype(np.int64)


def test_nms_lifts_the_guard_and_keeps_results(traced_batched_nms):
    assert "If" in _ops(traced_batched_nms)
    model = nms.run(_copy(traced_batched_nms))
    onnx.checker.check_model(model, full_check=True)
    assert "If" not in _ops(model) and "NonMaxSuppression" in _ops(model)
    rng = np.random.default_rng(1)
    for n in (0, 1, 7, 50):
        boxes, scores, classes = _nms_inputs(rng, n)
        (before,) = _run(traced_batched_nms, boxes=boxes, scores=scores, classes=classes)
        (after,) = _run(model, boxes=boxes, scores=scores, classes=classes)
        np.testing.assert_array_equal(after, before)
        assert (len(after) > 0) == (n > 0)


def test_nms_leaves_other_ifs_alone():
    model = _if_model(cond_is_constant=False)
    assert nms.run(_copy(model)) == model


# --- shapes --------------------------------------------------------------------------------------------------------

def _if_model(cond_is_constant):
    """y = If(cond, x + 1, x * 2); cond constant True, or read from input `c`."""
    then = helper.make_graph([helper.make_node("Add", ["x", "one"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    nodes = [
        helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(np.float32(1))),
        helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.float32(2))),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])]
    if cond_is_constant:
        nodes.append(helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True))))
    else:
        inputs.append(helper.make_tensor_value_info("c", TensorProto.BOOL, []))
    nodes.append(helper.make_node("If", ["c"], ["y"], name="guard", then_branch=then, else_branch=other))
    graph = helper.make_graph(nodes, "if", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
    return helper.make_model(graph, opset_imports=OPSET)


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
    model = shapes.run(_copy(original))
    onnx.checker.check_model(model, full_check=True)
    assert "Gather" not in _ops(model) and "Mul" not in _ops(model), "the arithmetic on static dims is folded"
    target = next(n for n in model.graph.node if n.output[0] == "target")
    assert target.op_type == "Constant"
    np.testing.assert_array_equal(numpy_helper.to_array(target.attribute[0].t), [-1, 12])
    for n in (0, 1, 5):
        x = np.arange(n * 12, dtype=np.float32).reshape(n, 3, 4)
        np.testing.assert_array_equal(_run(model, x=x)[0], _run(original, x=x)[0])


def test_shapes_removes_if_with_constant_condition():
    original = _if_model(cond_is_constant=True)
    model = shapes.run(_copy(original))
    onnx.checker.check_model(model, full_check=True)
    assert "If" not in _ops(model)
    x = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(_run(model, x=x)[0], x + 1)


def test_shapes_refuses_undecidable_control_flow():
    with pytest.raises(D2TFError, match="control flow left that graphfix cannot decide: If guard"):
        shapes.run(_if_model(cond_is_constant=False))


# --- cleanup -------------------------------------------------------------------------------------------------------

def test_cleanup_folds_dedups_and_drops_dead_code_but_keeps_every_weight():
    zeros = np.zeros(3, np.float32)
    nodes = [
        helper.make_node("Constant", [], ["a"], value=numpy_helper.from_array(np.array([1, 2, 3], np.float32))),
        helper.make_node("Constant", [], ["b"], value=numpy_helper.from_array(np.array([1, 2, 3], np.float32))),
        helper.make_node("Add", ["a", "b"], ["ab"], name="foldable"),
        helper.make_node("Identity", ["x"], ["x_id"]),
        helper.make_node("Mul", ["x_id", "ab"], ["m"]),
        helper.make_node("Add", ["m", "bias1"], ["m1"]),
        helper.make_node("Add", ["m1", "bias2"], ["m2"]),
        helper.make_node("Add", ["m2", "a"], ["p"]),
        helper.make_node("Mul", ["m2", "b"], ["q"]),
        helper.make_node("Add", ["p", "q"], ["pq"]),
        helper.make_node("Identity", ["pq"], ["y"]),
        helper.make_node("Sub", ["x", "a"], ["dead"]),
    ]
    graph = helper.make_graph(
        nodes, "cleanup", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        initializer=[numpy_helper.from_array(zeros, "bias1"), numpy_helper.from_array(zeros, "bias2"),
                     numpy_helper.from_array(zeros, "unused.weight")],
    )
    original = helper.make_model(graph, opset_imports=OPSET)
    model = cleanup.run(_copy(original))
    onnx.checker.check_model(model, full_check=True)
    ops = _ops(model)
    assert "Identity" not in ops and "Sub" not in ops
    assert ops.count("Constant") == 2, "a and b are equal: one constant left, plus the folded a+b"
    assert sorted(i.name for i in model.graph.initializer) == ["bias1", "bias2", "unused.weight"], (
        "initializers are the checkpoint: equal ones keep their names, unread ones stay")
    assert [o.name for o in model.graph.output] == ["y"]
    x = np.array([0.5, -1, 2], np.float32)
    np.testing.assert_array_equal(_run(model, x=x)[0], _run(original, x=x)[0])


# --- foldbn --------------------------------------------------------------------------------------------------------

def _bn_inputs(rng, prefix, channels):
    """gamma, beta, mean, var of a FrozenBN with statistics far from the identity."""
    values = [rng.uniform(0.5, 2, channels), rng.normal(0, 1, channels), rng.normal(0, 1, channels),
              rng.uniform(0.1, 3, channels)]
    return [numpy_helper.from_array(v.astype(np.float32), f"{prefix}.{name}")
            for v, name in zip(values, ("weight", "bias", "running_mean", "running_var"))]


def _bn(x, prefix, out):
    return helper.make_node("BatchNormalization", [x] + [f"{prefix}.{n}" for n in
                            ("weight", "bias", "running_mean", "running_var")], [out], epsilon=1e-5)


def test_foldbn_folds_conv_bn_pairs_and_leaves_shared_outputs():
    rng = np.random.default_rng(0)
    w = lambda name, *shape: numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32), name)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "c1.weight"], ["c1"], pads=[1, 1, 1, 1]),  # no bias: folding adds one
        _bn("c1", "c1.norm", "n1"),
        helper.make_node("Conv", ["n1", "c2.weight", "c2.bias"], ["c2"]),
        _bn("c2", "c2.norm", "n2"),
        helper.make_node("Conv", ["n2", "c3.weight"], ["c3"]),  # read twice: its BN cannot absorb it
        _bn("c3", "c3.norm", "n3"),
        helper.make_node("Add", ["n3", "c3"], ["y"]),
    ]
    inits = [w("c1.weight", 4, 3, 3, 3), w("c2.weight", 4, 4, 1, 1), w("c2.bias", 4), w("c3.weight", 4, 4, 1, 1)]
    for prefix in ("c1.norm", "c2.norm", "c3.norm"):
        inits += _bn_inputs(rng, prefix, 4)
    graph = helper.make_graph(nodes, "foldbn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=inits)
    original = helper.make_model(graph, opset_imports=OPSET)
    model = foldbn.run(_copy(original))
    onnx.checker.check_model(model, full_check=True)
    assert _ops(model) == ["Conv", "Conv", "Conv", "BatchNormalization", "Add"]
    names = {i.name for i in model.graph.initializer}
    assert {"c1.weight.bn_folded", "c1.weight.bn_folded_bias", "c2.weight.bn_folded"} <= names
    assert {"c1.weight", "c1.norm.running_var", "c2.bias", "c3.weight"} <= names, "originals stay for the npz"
    reads = {name for node in model.graph.node for name in node.input}
    assert not reads & {"c1.weight", "c1.norm.running_var", "c2.bias"} and "c3.weight" in reads
    x = rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(model, x=x)[0], _run(original, x=x)[0], rtol=1e-5, atol=1e-5)
