"""The tensorpack npz (tf_import.tensorpack_checkpoint), checked against the contract
(docs/tensorpack.md section 1), restated here independently of the code under test."""

import numpy as np
import pytest

from core import D2TFError, zoo
from core.checkpoint import load_weights
from tests.model_infos import model_info
from tests.tensorpack_contract import contract_names, contract_value
from tf_import import tensorpack_checkpoint as tp


@pytest.mark.parametrize("config", zoo.NPZ_CONFIGS, ids=zoo.short_name)
def test_npz_has_tensorpacks_names_and_the_contracts_values(config, pipeline):
    p = pipeline(config)
    arch = p.info.architecture
    npz = np.load(p.out / "model.npz")
    conv_head = p.info.tuned.get("MODEL.ROI_BOX_HEAD.NUM_CONV", 0) > 0  # tests/builds.py CUSTOM: 4conv1fc
    expected = contract_names(arch, conv_head)
    assert len(expected) == len(set(expected))
    assert sorted(npz.files) == sorted(expected)
    seen = set()
    for d2_name, value in load_weights(p.weights).items():
        name, want = contract_value(d2_name, value, arch, p.info.num_classes, p.info.input.format, conv_head)
        assert name not in seen
        seen.add(name)
        assert npz[name].dtype == np.float32
        np.testing.assert_array_equal(npz[name], want, err_msg=f"{d2_name} -> {name}")
    assert seen == set(npz.files), "every checkpoint tensor lands in exactly one key"


def test_weights_left_over_or_missing_are_named():
    arch = model_info(architecture={"backbone": "C4", "mask": False}).architecture
    with pytest.raises(D2TFError, match=r"no tensorpack counterpart: roi_heads\.keypoint_head\.w"):
        tp.tensorpack_weights({"roi_heads.keypoint_head.w": np.zeros(1, np.float32)}, arch)
    with pytest.raises(D2TFError, match=r"lacks weights for .*: conv0/W, .*fastrcnn/box/W"):
        tp.tensorpack_weights({"backbone.res2.0.conv1.weight": np.zeros((64, 64, 1, 1), np.float32)}, arch)

