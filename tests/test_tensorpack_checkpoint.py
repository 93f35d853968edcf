"""The tensorpack npz and flags (tf_import.tensorpack_checkpoint), checked against the contract
(shared/reference/tensorpack-format.md sections 1-2), restated here independently of the code under test."""

import numpy as np
import pytest

from core import D2TFError, zoo
from core.checkpoint import load_weights
from tests.tensorpack_contract import contract_names, contract_value
from tf_import import tensorpack_checkpoint as tp


@pytest.mark.parametrize("config", zoo.TENSORPACK_ARCHITECTURES, ids=zoo.short_name)
def test_npz_has_tensorpacks_names_and_the_contracts_values(config, pipeline):
    p = pipeline(config)
    arch = p.info["architecture"]
    npz = np.load(p.out / "model.npz")
    expected = contract_names(arch)
    assert len(expected) == len(set(expected))
    assert sorted(npz.files) == sorted(expected)
    seen = set()
    for d2_name, value in load_weights(p.weights).items():
        name, want = contract_value(d2_name, value, arch, p.info["num_classes"])
        assert name not in seen
        seen.add(name)
        assert npz[name].dtype == np.float32
        np.testing.assert_array_equal(npz[name], want, err_msg=f"{d2_name} -> {name}")
    assert seen == set(npz.files), "every checkpoint tensor lands in exactly one key"


@pytest.mark.parametrize("config", zoo.TENSORPACK_ARCHITECTURES, ids=zoo.short_name)
def test_tensorpack_smartinit_loads_the_npz_with_nothing_unmatched(config, pipeline):
    """tensorpack 0.11's own SmartInit (in tests/tf_checks.py) restores every variable the contract names."""
    p = pipeline(config)
    report = p.tf_report
    assert report["restored"] == len(contract_names(p.info["architecture"]))
    assert not [w for w in report["warnings"] if "not found" in w or "mismatch" in w.lower()], report["warnings"]
    assert report["max_abs_diff"] == 0.0


def _info(backbone="FPN", depth=50, mask=True, cascade=False, **overrides):
    info = {
        "architecture": {"backbone": backbone, "depth": depth, "mask": mask, "cascade": cascade, "stride_in_1x1": True},
        "num_classes": 80, "pixel_mean_bgr": [103.53, 116.28, 123.675], "pixel_std_bgr": [1.0, 1.0, 1.0],
        "test": {"score_thresh": 0.05, "nms_thresh": 0.5, "detections_per_image": 100,
                 "rpn_pre_nms_topk": 6000 if backbone == "C4" else 1000, "rpn_post_nms_topk": 1000},
    }
    info.update(overrides)
    return info


MEAN_STD = "'PREPROC.PIXEL_MEAN=[123.675,116.28,103.53]' 'PREPROC.PIXEL_STD=[1.0,1.0,1.0]'"


@pytest.mark.parametrize("info, line", [
    (_info(), "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    (_info(backbone="C4", mask=False), "'MODE_MASK=False' 'MODE_FPN=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    (_info(depth=101, mask=False), "'MODE_MASK=False' 'MODE_FPN=True' 'FPN.CASCADE=False' "
     "'BACKBONE.RESNET_NUM_BLOCKS=[3,4,23,3]' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    (_info(cascade=True), "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=True' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    (_info(backbone="C4", depth=101), "'MODE_MASK=True' 'MODE_FPN=False' 'BACKBONE.RESNET_NUM_BLOCKS=[3,4,23,3]' "
     "'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    (_info(num_classes=3, pixel_std_bgr=[57.375, 57.12, 58.395], test={
        "score_thresh": 0.3, "nms_thresh": 0.5, "detections_per_image": 100, "rpn_pre_nms_topk": 1000,
        "rpn_post_nms_topk": 1000}),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' "
     "'PREPROC.PIXEL_MEAN=[123.675,116.28,103.53]' 'PREPROC.PIXEL_STD=[58.395,57.12,57.375]' "
     "'DATA.NUM_CATEGORY=3' 'TEST.RESULT_SCORE_THRESH=0.3'"),
    # Counts: C4 has tensorpack's pre- and post-NMS proposal counts; FPN one count per level and overall.
    (_info(backbone="C4", test={"score_thresh": 0.05, "nms_thresh": 0.5, "detections_per_image": 30,
                                "rpn_pre_nms_topk": 300, "rpn_post_nms_topk": 100}),
     "'MODE_MASK=True' 'MODE_FPN=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD + " 'TEST.RESULTS_PER_IM=30' "
     "'RPN.TEST_PRE_NMS_TOPK=300' 'RPN.TEST_POST_NMS_TOPK=100'"),
    (_info(test={"score_thresh": 0.05, "nms_thresh": 0.5, "detections_per_image": 100, "rpn_pre_nms_topk": 200,
                 "rpn_post_nms_topk": 200}),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD +
     " 'RPN.TEST_PER_LEVEL_NMS_TOPK=200'"),
])
def test_flags_line(info, line):
    assert tp.flags_line(info) == line


def test_weights_left_over_or_missing_are_named():
    arch = _info(backbone="C4", mask=False)["architecture"]
    with pytest.raises(D2TFError, match=r"no tensorpack counterpart: roi_heads\.keypoint_head\.w"):
        tp.tensorpack_weights({"roi_heads.keypoint_head.w": np.zeros(1, np.float32)}, arch)
    with pytest.raises(D2TFError, match=r"lacks weights for .*: conv0/W, .*fastrcnn/box/W"):
        tp.tensorpack_weights({"backbone.res2.0.conv1.weight": np.zeros((64, 64, 1, 1), np.float32)}, arch)
