"""tf_import: the frozen pb, run in a fresh process with plain tf.compat.v1, against onnxruntime on the same
fixed ONNX. TensorFlow never runs in this (PyTorch) process: translation and inference are subprocesses."""

import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from d2tf import zoo
from d2tf.synthetic import synthetic_image
from tests.conftest import run_python
from tests.parity import OTHER_SIZE, TRACE_SIZE, assert_same_detections

# float32 round-off between TF's and onnxruntime's kernels; measured ~2e-4 px, 1e-5 on scores and masks.
BOX_TOL, SCORE_TOL, MASK_TOL = 0.05, 1e-4, 1e-4
RUNNER = os.path.join(os.path.dirname(__file__), "pb_runner.py")


def _ok(*args):
    result = run_python(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def run_pb(pb_path, images, tmp_path):
    """{image key: {output: array}} from tests/pb_runner.py (plain tf.compat.v1, nothing from d2tf)."""
    np.savez(tmp_path / "images.npz", **images)
    _ok(RUNNER, pb_path, tmp_path / "images.npz", tmp_path / "outputs.npz")
    results = {}
    for name, value in np.load(tmp_path / "outputs.npz").items():
        key, output = name.split("/")
        results.setdefault(key, {})[output] = value
    return results


@pytest.mark.parametrize("roialign", ["tensorpack", "exact"])
@pytest.mark.parametrize("config", zoo.SEED_ARCHITECTURES, ids=zoo.short_name)
def test_pb_matches_onnxruntime(config, roialign, pb, fixed, exported, onnx_outputs, measure, tmp_path):
    pb_path, seconds = pb(config, roialign)
    info = json.loads((exported(config) / "model.json").read_text())
    cases = {"trace_size": (1, TRACE_SIZE), "other_size": (2, OTHER_SIZE)}
    results = run_pb(pb_path, {k: synthetic_image(*size, seed=seed) for k, (seed, size) in cases.items()}, tmp_path)
    if seconds is not None:  # exact mode's pb comes from the pipeline run, timed in its own output
        measure("tf_import (translate+freeze in a subprocess)", architecture=zoo.short_name(config),
                roialign=roialign, seconds=seconds, pb_mib=os.path.getsize(pb_path) / 2**20)
    for key, (seed, size) in cases.items():
        got = results[key]
        assert got["labels"].dtype == np.int64 and (got["labels"] >= 1).all(), "tensorpack labels are 1-based"
        assert got["boxes"].dtype == np.float32 and got["scores"].dtype == np.float32
        if info["architecture"]["mask"]:
            m = info["mask_resolution"]
            assert m == (28 if info["architecture"]["backbone"] == "FPN" else 14)
            assert got["masks"].shape == (len(got["scores"]), m, m)
        else:
            assert "masks" not in got
        ref = onnx_outputs(fixed(config, roialign), seed, size)
        candidate = {"boxes": got["boxes"], "scores": got["scores"], "classes": got["labels"] - 1}
        if "masks" in got:
            candidate["masks"] = got["masks"]
        assert_same_detections(ref, candidate, BOX_TOL, SCORE_TOL, MASK_TOL if "masks" in got else None)
        assert len(ref["scores"]) >= 10


@pytest.mark.architecture("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")
def test_zero_detections_give_empty_outputs(high_threshold_export, tmp_path):
    from graphfix.cli import fix

    out, grey = high_threshold_export("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")
    fixed_path = fix(str(out / "model.onnx"), str(out / "model.fixed.onnx"))  # beside its model.json
    _ok("-m", "tf_import", fixed_path, "--out", tmp_path)
    results = run_pb(tmp_path / "model.pb", {"grey": grey, "trace": synthetic_image(*TRACE_SIZE, seed=0)}, tmp_path)
    assert len(results["trace"]["scores"]) > 0
    got = results["grey"]
    assert {k: (v.shape, v.dtype) for k, v in got.items() if k != "seconds"} == {
        "boxes": ((0, 4), np.float32), "scores": ((0,), np.float32), "labels": ((0,), np.int64),
        "masks": ((0, 28, 28), np.float32),
    }


def _write_model(tmp_path, name, model, exported):
    """A hand-made graph beside a real model.json, as tf_import expects export's output."""
    onnx.save(model, tmp_path / name)
    source = exported("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml") / "model.json"
    (tmp_path / "model.json").write_text(source.read_text())
    return tmp_path / name


def _model(nodes, initializers=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["h", "w", 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("boxes", "scores", "classes")],
        initializer=list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])


@pytest.mark.architecture("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml")
def test_unknown_op_is_refused_naming_the_node(tmp_path, exported):
    model = _model([
        helper.make_node("Hardmax", ["image"], ["boxes"], name="/roi_heads/mystery"),
        helper.make_node("Relu", ["image"], ["scores"], name="relu"),
        helper.make_node("Relu", ["image"], ["classes"], name="relu2"),
    ])
    result = run_python("-m", "tf_import", _write_model(tmp_path, "unknown.onnx", model, exported), "--out", tmp_path)
    assert result.returncode == 2, result.stderr
    assert "error: Hardmax node '/roi_heads/mystery': no handler for op type Hardmax" in result.stderr
    assert "tf_import/ops" in result.stderr and "Traceback" not in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".pb", ".npz", ".txt")], "nothing half-written"


@pytest.mark.architecture("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml")
def test_unsupported_attribute_is_refused_naming_the_node(tmp_path, exported):
    weight = onnx.numpy_helper.from_array(np.zeros((4, 1, 3, 3), np.float32), "w")
    model = _model([
        helper.make_node("Transpose", ["image"], ["chw"], perm=[2, 0, 1]),
        helper.make_node("Unsqueeze", ["chw", "axes"], ["nchw"]),
        helper.make_node("Conv", ["nchw", "w"], ["boxes"], name="/backbone/grouped", group=3),
        helper.make_node("Relu", ["image"], ["scores"]),
        helper.make_node("Relu", ["image"], ["classes"]),
    ], [weight, onnx.numpy_helper.from_array(np.array([0], np.int64), "axes")])
    result = run_python("-m", "tf_import", _write_model(tmp_path, "grouped.onnx", model, exported), "--out", tmp_path)
    assert result.returncode == 2
    assert "error: Conv node '/backbone/grouped': group=3" in result.stderr


def test_list_ops_names_the_handler_files():
    listing = _ok("-m", "tf_import", "--list-ops").stdout
    rows = dict(line.split() for line in listing.splitlines())
    assert rows["RoiAlign"] == "tf_import/ops/roi_align.py"
    assert rows["NonMaxSuppression"] == "tf_import/ops/non_max_suppression.py"
    assert rows["Conv"] == "tf_import/ops/conv.py"


@pytest.mark.architecture("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")
def test_folded_batchnorm_pb_matches_and_npz_is_unchanged(exported, fixed, onnx_outputs, tmp_path):
    """graphfix's opt-in foldbn: the pb has no BatchNorm left and still matches; the npz, derived from export's
    unfolded model.onnx, is byte-identical to the unfolded run's."""
    from graphfix.cli import fix
    from graphfix.passes import WITH_FOLDBN

    config = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
    out = exported(config)
    (tmp_path / "model.json").write_text((out / "model.json").read_text())
    os.symlink(out / "model.onnx", tmp_path / "model.onnx")
    folded = fix(str(tmp_path / "model.onnx"), str(tmp_path / "model.fixed.onnx"), WITH_FOLDBN, roialign="exact")
    assert "BatchNormalization" not in {n.op_type for n in onnx.load(folded).graph.node}
    _ok("-m", "tf_import", folded, "--out", tmp_path)
    assert (tmp_path / "model.npz").read_bytes() == (out / "model.npz").read_bytes()
    cases = {"trace_size": (1, TRACE_SIZE), "other_size": (2, OTHER_SIZE)}
    results = run_pb(tmp_path / "model.pb", {k: synthetic_image(*s, seed=seed) for k, (seed, s) in cases.items()},
                     tmp_path)
    for key, (seed, size) in cases.items():
        ref = onnx_outputs(fixed(config, "exact"), seed, size)
        assert_same_detections(ref, onnx_outputs(folded, seed, size), BOX_TOL, SCORE_TOL, MASK_TOL)
        got = results[key]
        got["classes"] = got.pop("labels") - 1
        assert_same_detections(ref, got, BOX_TOL, SCORE_TOL, MASK_TOL)
