"""graphfix/passes/roialign.py: tensorpack mode is tensorpack's construction, exact mode detectron2's adaptive grid,
and the switch goes both ways."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from core import D2TFError
from graphfix.passes import roialign
from tests.graphfix.graphs import OPSET, copy, run


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
    (got,) = run(model, x=x, rois=rois, idx=idx)
    expected = _tensorpack_roialign(x[0].astype(np.float64), rois.astype(np.float64), 7, 0.25)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    (adaptive,) = run(_roialign_model(), x=x, rois=rois, idx=idx)
    assert np.abs(adaptive - got).max() > 1e-3, "the two semantics differ on large boxes, so this test can fail"


@pytest.mark.parametrize("exported", [0, 2, 4])
def test_roialign_exact_mode_keeps_the_exported_sampling(exported):
    """detectron2's own grid: adaptive (the zoo's POOLER_SAMPLING_RATIO 0) or the k x k of a model that set k."""
    original = _roialign_model(sampling_ratio=exported)
    model = roialign.run(copy(original), roialign="exact")
    assert model.graph == original.graph


@pytest.mark.parametrize("exported", [0, 4])
def test_roialign_switches_a_fixed_graph_back_and_forth(exported):
    """verify measures the other mode by re-running the pass on the fixed graph: the switch must be exact both ways,
    back to the ratio detectron2 exported."""
    original = _roialign_model(sampling_ratio=exported)
    tensorpack = roialign.run(copy(original), roialign="tensorpack")
    assert _ratios(tensorpack) == [2]
    assert roialign.run(copy(tensorpack), roialign="exact").graph == original.graph
    assert roialign.run(copy(roialign.run(copy(tensorpack), roialign="exact")), roialign="tensorpack") == tensorpack


def _ratios(model):
    return [a.i for n in model.graph.node for a in n.attribute if a.name == "sampling_ratio"]


@pytest.mark.parametrize("mode", ["tensorpack", "exact"])
def test_roialign_leaves_unaligned_roialign_as_exported(mode):
    """detectron2's ROIAlign v1 (the Detectron1 comparisons) samples 2x2 per bin, and tensorpack has no unaligned
    RoIAlign: both modes keep the exported node."""
    original = _roialign_model(sampling_ratio=2, mode="output_half_pixel")
    assert roialign.run(copy(original), roialign=mode) == original


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
        assert _ratios(model) == [ratio] * 4


def test_roialign_refuses_unknown_modes():
    with pytest.raises(D2TFError, match="coordinate_transformation_mode=asymmetric"):
        roialign.run(_roialign_model(mode="asymmetric"))
    with pytest.raises(D2TFError, match="--roialign must be one of"):
        roialign.run(_roialign_model(), roialign="fast")
