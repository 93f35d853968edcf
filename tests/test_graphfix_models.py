"""graphfix on the exported graphs of all 12 architectures, checked in onnxruntime against the unfixed graph."""

import numpy as np
import onnx
import pytest

from core import zoo
from core.contract import as_detections, has_detections
from core.matching import match_detections
from core.metadata import read_info, read_passes
from tests.builds import IMAGES, SUITE
from tests.parity import assert_same_outputs

# The passes other than roialign preserve semantics: only float evaluation order may differ (one runtime, so a tenth of
# verify's floor on every value but positions).
SAME_RUNTIME = {"box": 0.05, "score": 1e-5, "mask": 1e-5, "sem_seg": 1e-5, "keypoint": 0.05, "keypoint_score": 1e-5}


@pytest.mark.parametrize("config", SUITE, ids=zoo.short_name)
def test_fixed_graph_is_valid_and_equals_the_export(config, pipeline, measure):
    p = pipeline(config)
    proto = onnx.load(str(p.out / "model.fixed.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    assert not set(ops) & {"If", "Scan"}
    assert ops.count("Loop") == (1 if p.info.architecture.keypoints else 0), "keypoints: the per-box resize"
    assert read_passes(proto) == {"roialign": p.roialign, "nms": None, "shapes": None, "cleanup": None}
    assert read_info(proto, "model.fixed.onnx") == p.info, "export's model info survives"
    original = onnx.load(str(p.out / "model.onnx"), load_external_data=False)
    measure("graphfix node counts", architecture=zoo.short_name(config), exported=len(original.graph.node),
            fixed=len(proto.graph.node))
    reference, candidate = p.outputs("model.onnx"), p.outputs(p.fixed("exact")[1])  # the mode that changes nothing
    for key in IMAGES:
        assert_same_outputs(reference[key], candidate[key], SAME_RUNTIME, min_detections=0)


@pytest.mark.parametrize("config", SUITE, ids=zoo.short_name)
def test_tensorpack_roialign_difference_is_measured(config, pipeline, measure):
    p = pipeline(config)
    tensorpack = onnx.load(str(p.fixed("tensorpack")[0]), load_external_data=False)
    roi_aligns = [n for n in tensorpack.graph.node if n.op_type == "RoiAlign"]
    assert bool(roi_aligns) == bool(p.info.pooler), "RoIAlign where the model pools, and only there (RetinaNet)"
    assert all(a.i == 2 for n in roi_aligns for a in n.attribute if a.name == "sampling_ratio")
    exact, sampled = p.outputs(p.fixed("exact")[1]), p.outputs(p.fixed("tensorpack")[1])
    for key in IMAGES:
        if "sem_seg" in exact[key] and not roi_aligns:  # a semantic FPN: the modes are one graph
            assert np.array_equal(exact[key]["sem_seg"], sampled[key]["sem_seg"])
        if not has_detections(exact[key]):
            continue
        match = match_detections(as_detections(exact[key]), as_detections(sampled[key]), iou_threshold=0.9)
        measure("roialign tensorpack vs exact (onnxruntime, matched at IoU>0.9)",
                architecture=zoo.short_name(config), image=key, exact=match.num_reference,
                tensorpack=match.num_candidate, matched=f"{match.agreement:.0%}", max_box_diff_px=match.max_box_diff,
                max_score_diff=match.max_score_diff)
        if not roi_aligns or not p.info.architecture.aligned:  # ROIAlign v1 keeps its 2x2 sampling
            assert match.agreement == 1.0 and match.max_box_diff == match.max_score_diff == 0
            continue
        # sampling ratio 2 vs adaptive moves final AP by < 0.5 (tensorpack's convert_d2 README): most detections
        # must survive it.
        assert match.agreement >= 0.7
        assert match.max_box_diff > 0 or match.max_score_diff > 0, "the modes differ, or the pass did nothing"


def test_cli_lists_passes_and_refuses_bad_input(tmp_path):
    import subprocess
    import sys

    listing = subprocess.run([sys.executable, "-m", "graphfix", "--list"], capture_output=True, text=True)
    assert listing.returncode == 0
    assert [line.split()[0] for line in listing.stdout.splitlines()] == ["roialign", "nms", "shapes", "foldbn", "cleanup"]
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    for args, message in (
        ([str(tmp_path / "missing.onnx")], "error: ONNX file not found"),
        ([str(tmp_path / "bad.onnx")], "error: " + str(tmp_path / "bad.onnx") + ": not an ONNX model"),
        ([str(tmp_path / "bad.onnx"), "--passes", "roialign,magic"], "error: unknown pass magic"),
    ):
        result = subprocess.run([sys.executable, "-m", "graphfix", *args], capture_output=True, text=True)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"], "no output written on failure"
