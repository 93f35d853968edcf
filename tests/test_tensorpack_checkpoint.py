"""The tensorpack npz and flags (tf_import.tensorpack_checkpoint), checked against the contract
(shared/reference/tensorpack-format.md sections 1-2), restated here independently of the code under test."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from d2tf import D2TFError, zoo
from d2tf.checkpoint import load_weights
from tf_import import tensorpack_checkpoint as tp

BN = {"weight": "gamma", "bias": "beta", "running_mean": "mean/EMA", "running_var": "variance/EMA"}


def contract_names(arch):
    """Every variable tensorpack's FasterRCNN creates for `arch`, straight from the contract."""
    names = []

    def conv_bn(layer):
        names.extend([f"{layer}/W"] + [f"{layer}/bn/{p}" for p in BN.values()])

    def layer_with_bias(layer):
        names.extend([f"{layer}/W", f"{layer}/b"])

    conv_bn("conv0")
    for g, blocks in enumerate([3, 4, 6 if arch["depth"] == 50 else 23, 3]):
        conv_bn(f"group{g}/block0/convshortcut")
        for b in range(blocks):
            for k in (1, 2, 3):
                conv_bn(f"group{g}/block{b}/conv{k}")
    for layer in ("rpn/conv0", "rpn/class", "rpn/box"):
        layer_with_bias(layer)
    if arch["backbone"] == "FPN":
        for level in (2, 3, 4, 5):
            layer_with_bias(f"fpn/lateral_1x1_c{level}")
            layer_with_bias(f"fpn/posthoc_3x3_p{level}")
    if arch["cascade"]:
        for stage in (1, 2, 3):
            for layer in ("head/fc6", "head/fc7", "outputs/class", "outputs/box"):
                layer_with_bias(f"cascade_rcnn_stage{stage}/{layer}")
    elif arch["backbone"] == "FPN":
        for layer in ("fc6", "fc7", "outputs/class", "outputs/box"):
            layer_with_bias(f"fastrcnn/{layer}")
    else:
        layer_with_bias("fastrcnn/class")
        layer_with_bias("fastrcnn/box")
    if arch["mask"]:
        for i in range(4 if arch["backbone"] == "FPN" else 0):
            layer_with_bias(f"maskrcnn/fcn{i}")
        layer_with_bias("maskrcnn/deconv")
        layer_with_bias("maskrcnn/conv")
    return names


def contract_value(d2_name, value, arch, num_classes):
    """(tensorpack name, value) for one detectron2 tensor, by the contract's table, written as string rewrites."""
    name = d2_name.replace("backbone.bottom_up.", "").replace("backbone.", "").replace("roi_heads.res5.", "res5.")
    name = name.replace("stem.conv1", "conv0").replace(".shortcut", ".convshortcut")
    name = re.sub(r"^res(\d)\.(\d+)\.", lambda m: f"group{int(m[1]) - 2}/block{m[2]}/", name)
    name = re.sub(r"fpn_lateral(\d)", r"fpn/lateral_1x1_c\1", name)
    name = re.sub(r"fpn_output(\d)", r"fpn/posthoc_3x3_p\1", name)
    name = name.replace("proposal_generator.rpn_head.conv", "rpn/conv0")
    name = name.replace("proposal_generator.rpn_head.objectness_logits", "rpn/class")
    name = name.replace("proposal_generator.rpn_head.anchor_deltas", "rpn/box")
    name = re.sub(r"roi_heads\.box_head\.(\d)\.fc(\d)", lambda m: f"cascade_rcnn_stage{int(m[1]) + 1}/head/fc{int(m[2]) + 5}", name)
    name = re.sub(r"roi_heads\.box_predictor\.(\d)\.", lambda m: f"cascade_rcnn_stage{int(m[1]) + 1}/outputs/", name)
    name = re.sub(r"roi_heads\.box_head\.fc(\d)", lambda m: f"fastrcnn/fc{int(m[1]) + 5}", name)
    name = name.replace("roi_heads.box_predictor.", "fastrcnn/outputs/" if arch["backbone"] == "FPN" else "fastrcnn/")
    name = re.sub(r"roi_heads\.mask_head\.mask_fcn(\d)", lambda m: f"maskrcnn/fcn{int(m[1]) - 1}", name)
    name = name.replace("roi_heads.mask_head.deconv", "maskrcnn/deconv").replace("roi_heads.mask_head.predictor", "maskrcnn/conv")
    name = name.replace("outputs/cls_score", "outputs/class").replace("outputs/bbox_pred", "outputs/box")
    name = name.replace("fastrcnn/cls_score", "fastrcnn/class").replace("fastrcnn/bbox_pred", "fastrcnn/box")
    for d2, tpk in BN.items():
        name = name.replace(f".norm.{d2}", f"/bn/{tpk}")
    if d2_name.endswith("cls_score.weight") or d2_name.endswith("cls_score.bias"):
        value = np.concatenate([value[num_classes:], value[:num_classes]])  # background first
    if re.search(r"box_predictor\.(\d\.)?bbox_pred", d2_name) and value.shape[0] == 4 * num_classes and not arch["cascade"]:
        value = np.concatenate([value[:4], value])  # background slot = class 0's rows
    if name.endswith(".weight"):
        name = name[: -len(".weight")] + "/W"
        value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
    elif name.endswith(".bias"):
        name = name[: -len(".bias")] + "/b"
    return name.replace(".", "/"), value


@pytest.fixture(scope="session")
def npz(exported):
    """`npz(config)` -> (the pipeline run's model.npz, its model.json dict)."""
    return lambda config: (exported(config) / "model.npz", json.loads((exported(config) / "model.json").read_text()))


@pytest.mark.parametrize("config", zoo.SEED_ARCHITECTURES, ids=zoo.short_name)
def test_npz_has_tensorpacks_names_and_the_contracts_values(config, npz, checkpoint_path):
    path, info = npz(config)
    arch = info["architecture"]
    npz = np.load(path)
    expected = contract_names(arch)
    assert len(expected) == len(set(expected))
    assert sorted(npz.files) == sorted(expected)
    checkpoint = load_weights(checkpoint_path(config))
    seen = set()
    for d2_name, value in checkpoint.items():
        name, want = contract_value(d2_name, value, arch, info["num_classes"])
        assert name not in seen
        seen.add(name)
        assert npz[name].dtype == np.float32
        np.testing.assert_array_equal(npz[name], want, err_msg=f"{d2_name} -> {name}")
    assert seen == set(npz.files), "every checkpoint tensor lands in exactly one key"


@pytest.mark.parametrize("config", [
    "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml",
    "Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml",
], ids=zoo.short_name)
def test_tensorpack_smartinit_loads_the_npz_with_nothing_unmatched(config, npz, checkpoint_path, tmp_path):
    path, info = npz(config)
    shapes = {}
    for d2_name, value in load_weights(checkpoint_path(config)).items():
        name, want = contract_value(d2_name, value, info["architecture"], info["num_classes"])
        shapes[name] = list(want.shape)
    (tmp_path / "variables.json").write_text(json.dumps(shapes))
    script = os.path.join(os.path.dirname(__file__), "tensorpack_loader.py")
    result = subprocess.run([sys.executable, script, str(path), str(tmp_path / "variables.json")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["restored"] == len(shapes)
    assert not [w for w in report["warnings"] if "not found" in w or "mismatch" in w.lower()], report["warnings"]
    assert report["max_abs_diff"] == 0.0


def _info(backbone="FPN", depth=50, mask=True, cascade=False, **overrides):
    info = {
        "architecture": {"backbone": backbone, "depth": depth, "mask": mask, "cascade": cascade, "stride_in_1x1": True},
        "num_classes": 80, "pixel_mean_bgr": [103.53, 116.28, 123.675], "pixel_std_bgr": [1.0, 1.0, 1.0],
        "test": {"score_thresh": 0.05, "nms_thresh": 0.5},
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
    (_info(num_classes=3, pixel_std_bgr=[57.375, 57.12, 58.395], test={"score_thresh": 0.3, "nms_thresh": 0.5}),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' "
     "'PREPROC.PIXEL_MEAN=[123.675,116.28,103.53]' 'PREPROC.PIXEL_STD=[58.395,57.12,57.375]' "
     "'DATA.NUM_CATEGORY=3' 'TEST.RESULT_SCORE_THRESH=0.3'"),
])
def test_flags_line(info, line):
    assert tp.flags_line(info) == line


def test_weights_left_over_or_missing_are_named():
    arch = _info(backbone="C4", mask=False)["architecture"]
    with pytest.raises(D2TFError, match=r"no tensorpack counterpart: roi_heads\.keypoint_head\.w"):
        tp.tensorpack_weights({"roi_heads.keypoint_head.w": np.zeros(1, np.float32)}, arch)
    with pytest.raises(D2TFError, match=r"lacks weights for .*: conv0/W, .*fastrcnn/box/W"):
        tp.tensorpack_weights({"backbone.res2.0.conv1.weight": np.zeros((64, 64, 1, 1), np.float32)}, arch)
