"""tf_import: the frozen pb against onnxruntime on the same fixed ONNX. TensorFlow never runs in this (PyTorch)
process: each build's pb ran in its verify (exact RoIAlign for Mask R-CNN builds, tensorpack's for Faster, so both
modes pass through every backbone), and the cases below start `python -m tf_import` and `runners.pb_runner` as
subprocesses."""

import json
import os

import numpy as np
import onnx
import pytest
from onnx import helper

from core import contract, zoo
from core.files import load_outputs
from core.metadata import write_info
from core.synthetic import synthetic_image
from tests.builds import IMAGES, SUITE, TRACE_SIZE
from tests.model_infos import model_info
from tests.parity import assert_same_detections, assert_same_outputs
from tests.processes import CHILDREN, run_python
from tests.threshold_detector import detector_nodes, graph_model

# float32 round-off between TF's and onnxruntime's kernels; measured ~2e-4 px, 1e-5 on scores and masks.
BOX_TOL, SCORE_TOL, MASK_TOL = 0.05, 1e-4, 1e-4
EXAMPLE = zoo.DEFAULT_EXAMPLE


def _ok(*args):
    result = run_python(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def run_pb(pb_path, images, tmp_path, *options):
    """{image key: outputs, 0-based classes} of `python -m runners.pb_runner` (plain tf.compat.v1)."""
    np.savez(tmp_path / "images.npz", **images)
    _ok("-m", "runners.pb_runner", *options, pb_path, tmp_path / "images.npz", tmp_path / "outputs.npz")
    return {key: contract.labels_to_classes(value) for key, value in load_outputs(tmp_path / "outputs.npz").items()}


def _check_interface(got, info, height, width):
    assert sorted(got) == sorted(info.outputs)
    if "sem_seg" in got:
        classes = info.sem_seg_classes or info.num_classes
        assert got["sem_seg"].dtype == np.float32 and got["sem_seg"].shape == (classes, height, width)
    if "proposals" in got:
        assert got["proposals"].dtype == got["objectness"].dtype == np.float32
        assert got["proposals"].shape == (len(got["objectness"]), 4)
        assert (np.diff(got["objectness"]) <= 0).all(), "best first"
    if "keypoints" in got:
        assert got["keypoints"].dtype == np.float32
        assert got["keypoints"].shape == (len(got["scores"]), info.num_keypoints, 3)
    if "classes" not in got:
        return
    assert got["classes"].dtype == np.int64 and (got["classes"] >= 0).all(), "pb labels are 1-based"
    assert got["boxes"].dtype == np.float32 and got["scores"].dtype == np.float32
    if info.architecture.mask:
        m = info.mask_resolution
        # the mask head's deconv doubles its pooled map, which C4's res5 halved first
        assert m == info.pooler["mask"].resolution * (1 if info.architecture.backbone == "C4" else 2)
        assert got["masks"].shape == (len(got["scores"]), m, m)
    else:
        assert "masks" not in got


@pytest.mark.parametrize("config", SUITE, ids=zoo.short_name)
def test_pb_matches_onnxruntime(config, pipeline, measure):
    p = pipeline(config)
    reference, candidate = p.outputs("model.fixed.onnx"), p.outputs("model.pb")
    measure("tf_import translate+freeze (seconds)", architecture=zoo.short_name(config), roialign=p.roialign,
            seconds=p.translate_seconds, pb_mib=os.path.getsize(p.out / "model.pb") / 2**20)
    for key in IMAGES:
        _check_interface(candidate[key], p.info, *IMAGES[key][1])
        assert_same_outputs(reference[key], candidate[key], p.tolerance)  # verify's (tests/builds.py UNDAMPED)


@pytest.mark.architecture(EXAMPLE)
def test_fast_start_config_computes_what_the_default_session_does(pipeline, tmp_path):
    """runners.pb_runner.fast_start_config (docs/benchmarks.md's session config for a short first run) leaves out
    grappler rewrites, not computation: the pb's detections under it are the default session's."""
    p = pipeline(EXAMPLE)
    images = dict(np.load(p.work / "images.npz"))
    fast, default = run_pb(p.out / "model.pb", images, tmp_path, "--fast-start"), p.outputs("model.pb")
    for key in images:  # float round-off (measured: scores 3.1e-6, masks 1.3e-5 apart), within the pb's tolerances
        assert_same_detections(default[key], fast[key], BOX_TOL, SCORE_TOL, MASK_TOL)


# Between them these two hold every op type the 12 architectures' pbs use (C4's and cascade FPN Mask's); the strip
# itself does not depend on the architecture.
@pytest.mark.parametrize("config", ["COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml",
                                    "Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml"], ids=zoo.short_name)
def test_pb_has_no_default_valued_attributes(config, pipeline):
    """Older TF versions load the pb without unknown-attribute errors (MatMul's grad_a/grad_b, GatherNd's
    bad_indices_policy are newer than TF 2.15): tf_import strips every attribute equal to its op's default."""
    result = _ok(os.path.join(CHILDREN, "default_attrs.py"), pipeline(config).out / "model.pb")
    report = json.loads(result.stdout)
    assert report["ops"].get("MatMul", 0) + report["ops"].get("GatherNd", 0) > 0, "ops that carry such attributes"
    assert report["default_valued_attrs"] == []


def test_repeated_nodes_are_merged_into_the_first():
    """freeze's merge_repeated_nodes: equal stateless nodes merge, chains of them too; large constants are not
    compared, random ops and kept names stay; the graph computes what it did."""
    report = json.loads(_ok(os.path.join(CHILDREN, "repeated_nodes.py")).stdout)
    merged = set(report["nodes"]) - set(report["kept"])
    assert merged == {"two_b", "mul_b", "Const_1", "rand_b/shape", "two_c"}, merged
    assert report["outputs_equal"]


@pytest.mark.architecture(EXAMPLE)
def test_zero_detections_give_empty_outputs(pipeline, high_threshold, tmp_path):
    """An image without detections gives empty outputs of the right shapes and types. The pb is the build's with
    high_threshold's score threshold: the pb its exported graph translates to, without a second translation."""
    p = pipeline(EXAMPLE)
    _, grey, threshold = high_threshold(EXAMPLE)
    _ok(os.path.join(CHILDREN, "score_threshold_pb.py"), p.out / "model.pb", tmp_path / "model.pb",
        p.info.test.score_thresh, threshold)
    results = run_pb(tmp_path / "model.pb", {"grey": grey, "trace": synthetic_image(*TRACE_SIZE, seed=0)}, tmp_path)
    assert len(results["trace"]["scores"]) > 0
    got = results["grey"]
    assert {k: (v.shape, v.dtype) for k, v in got.items() if k in contract.served_outputs(got)} == {
        "boxes": ((0, 4), np.float32), "scores": ((0,), np.float32), "classes": ((0,), np.int64),
        "masks": ((0, 28, 28), np.float32),
    }
    assert got["proposals"].shape == (len(got["objectness"]), 4), "the RPN's proposals, whatever the heads keep"


def test_tflite_outputs_are_padded_with_their_count(tmp_path):
    """model.tflite's outputs have the model's detections-per-image rows and num_detections says how many are
    detections (TF's Python interpreter cannot return an empty tensor); the runner cuts them back, to none on an
    image without detections."""
    path = _write_model(tmp_path, "threshold.onnx", graph_model(detector_nodes()))
    report = json.loads(_ok(os.path.join(CHILDREN, "tflite_interface.py"), path, 3).stdout)
    none, two = report["none"], report["two"]
    assert none["raw"]["num_detections"] == [0] and none["raw"]["boxes"] == [[0.0] * 4] * 3
    assert none["cut"] == {"boxes": [], "scores": [], "labels": []}
    assert two["raw"]["num_detections"] == [2] and two["raw"]["scores"] == [2.0, 7.0, 0.0]
    assert two["raw"]["labels"] == [3, 8, 0], "1-based, padded with 0"
    assert two["cut"] == {"boxes": [[2.0] * 4, [7.0] * 4], "scores": [2.0, 7.0], "labels": [3, 8]}


def test_files_of_kinds_a_run_does_not_write_are_left_as_they_were_and_named(tmp_path):
    """`--no-saved-model --no-tflite` into a directory holding a user's saved_model/, model.tflite and model.npz:
    tf_import writes its pb and leaves them, saying so in one line; its manifest lists the pb alone."""
    out = tmp_path / "out"
    (out / "saved_model").mkdir(parents=True)
    for name in ("saved_model/saved_model.pb", "model.tflite", "model.npz"):
        (out / name).write_text(f"the user's {name}")
    model = graph_model(detector_nodes())
    write_info(model, model_info(architecture={"name": "threshold", "meta": "RetinaNet"},  # no npz, said so
                                 outputs=contract.onnx_outputs("RetinaNet")))
    onnx.save(model, tmp_path / "threshold.onnx")
    result = _ok("-m", "tf_import", tmp_path / "threshold.onnx", "--out", out, "--no-saved-model", "--no-tflite",
                 "--manifest", tmp_path / "written")
    assert (out / "model.pb").stat().st_size > 0 and (tmp_path / "written").read_text() == "model.pb\n"
    for name in ("saved_model/saved_model.pb", "model.tflite", "model.npz"):
        assert (out / name).read_text() == f"the user's {name}", name
    assert f"[d2tf] left saved_model, model.tflite, model.npz in {out} as they were: this run wrote none, so they " \
           "are not this model's" in result.stderr


def _write_model(tmp_path, name, model):
    """A hand-made graph carrying model info as export records it (translation fails before the npz needs more)."""
    write_info(model, model_info(architecture={"mask": False},
                                 outputs=contract.served_outputs(contract.onnx_outputs())))
    onnx.save(model, tmp_path / name)
    return tmp_path / name


def test_unknown_op_is_refused_naming_the_node(tmp_path):
    model = graph_model([
        helper.make_node("Hardmax", ["image"], ["boxes"], name="/roi_heads/mystery"),
        helper.make_node("Relu", ["image"], ["scores"], name="relu"),
        helper.make_node("Relu", ["image"], ["classes"], name="relu2"),
    ])
    result = run_python("-m", "tf_import", _write_model(tmp_path, "unknown.onnx", model), "--out", tmp_path)
    assert result.returncode == 2, result.stderr
    assert "error: Hardmax node '/roi_heads/mystery': no handler for op type Hardmax" in result.stderr
    assert "tf_import/ops" in result.stderr and "Traceback" not in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".pb", ".npz", ".txt")], "nothing half-written"


def test_unsupported_attribute_is_refused_naming_the_node(tmp_path):
    weight = onnx.numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
    model = graph_model([
        helper.make_node("Transpose", ["image"], ["chw"], perm=[2, 0, 1]),
        helper.make_node("Unsqueeze", ["chw", "axes"], ["nchw"]),
        helper.make_node("Conv", ["nchw", "w"], ["boxes"], name="/backbone/padded", auto_pad="SAME_UPPER"),
        helper.make_node("Relu", ["image"], ["scores"]),
        helper.make_node("Relu", ["image"], ["classes"]),
    ], [weight, onnx.numpy_helper.from_array(np.array([0], np.int64), "axes")])
    result = run_python("-m", "tf_import", _write_model(tmp_path, "padded.onnx", model), "--out", tmp_path)
    assert result.returncode == 2
    assert "error: Conv node '/backbone/padded': auto_pad=SAME_UPPER" in result.stderr


def test_list_ops_names_the_handler_files():
    listing = _ok("-m", "tf_import", "--list-ops").stdout
    rows = dict(line.split() for line in listing.splitlines())
    assert rows["RoiAlign"] == "tf_import/ops/roi_align.py"
    assert rows["NonMaxSuppression"] == "tf_import/ops/non_max_suppression.py"
    assert rows["Conv"] == "tf_import/ops/conv.py"


@pytest.mark.architecture(EXAMPLE)
def test_folded_batchnorm_pb_matches_and_npz_is_unchanged(pipeline, tmp_path):
    """graphfix's opt-in foldbn: the pb has no BatchNorm left and still matches; the npz, derived from the unfolded
    tensors the folded graph keeps, and the flags files are byte-identical to the unfolded run's. The folded graph is
    converted alone in its directory, which tf_import leaves as it was: the fixed graph is self-describing."""
    from graphfix.cli import fix
    from graphfix.passes import WITH_FOLDBN
    from runners import onnx_runner

    p = pipeline(EXAMPLE)
    (tmp_path / "folded").mkdir()
    folded = fix(str(p.out / "model.onnx"), str(tmp_path / "folded" / "model.fixed.onnx"), WITH_FOLDBN, "exact")
    assert "BatchNormalization" not in {n.op_type for n in onnx.load(folded, load_external_data=False).graph.node}
    _ok("-m", "tf_import", folded, "--out", tmp_path, "--no-saved-model", "--no-tflite")  # the pb and the npz
    assert os.listdir(tmp_path / "folded") == ["model.fixed.onnx"]
    for name in ("model.npz", "flags.txt", "tensorpack_config.py"):
        assert (tmp_path / name).read_bytes() == (p.out / name).read_bytes(), name
    with np.load(p.work / "images.npz") as npz:
        images = {key: npz[key] for key in npz.files}
    results = run_pb(tmp_path / "model.pb", images, tmp_path)
    session = onnx_runner.session(folded)
    reference = p.outputs("model.fixed.onnx")
    for key, image in images.items():
        assert_same_detections(reference[key], onnx_runner.run(session, image), BOX_TOL, SCORE_TOL, MASK_TOL)
        assert_same_detections(reference[key], results[key], BOX_TOL, SCORE_TOL, MASK_TOL)


def test_the_smaller_tflite_variants_store_smaller_weights_and_compute_nearly_the_same():
    """tf_import.tflite's variants of a 3x3 convolution of 3 to 512 channels (54 KiB of weights): float16 stores
    them in half precision (about half the bytes), int8 as int8 with a scale per channel (under half), each
    answering within its precision of model.tflite (float16: a 2^-11 relative step, int8: a 2^-8 step per channel,
    summed over 27 products)."""
    report = json.loads(_ok(os.path.join(CHILDREN, "tflite_variants.py")).stdout)
    plain, half, int8 = report["float32"], report["float16"], report["int8"]
    assert "float16" not in plain["types"] and "int8" not in plain["types"] and plain["relative"] == 0.0
    assert "float16" in half["types"] and half["bytes"] < 0.55 * plain["bytes"] and 0 < half["relative"] < 1e-3
    assert "int8" in int8["types"] and int8["bytes"] < 0.45 * plain["bytes"] and 0 < int8["relative"] < 1e-2
