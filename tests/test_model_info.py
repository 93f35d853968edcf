"""core.model_info: the one definition of the model info every stage reads, its JSON form and its version."""

import json

import pytest

from core import D2TFError
from core.model_info import VERSION, ModelInfo, Pooler, TestSettings
from tests.model_infos import R50_FPN_MASK


def test_the_json_carries_the_version_and_reads_back_equal():
    text = R50_FPN_MASK.to_json()
    value = json.loads(text)
    assert value["version"] == VERSION == 1
    assert value["pooler"]["mask"] == {"type": "ROIAlignV2", "resolution": 14, "sampling_ratio": 0, "aligned": True}
    assert value["test"]["topk_candidates"] is None and value["keypoint_skeleton"] == []
    info = ModelInfo.from_json(text, "model.json")
    assert info == R50_FPN_MASK
    assert info.pooler["mask"] == Pooler(type="ROIAlignV2", resolution=14, sampling_ratio=0, aligned=True)
    assert info.test == TestSettings(score_thresh=0.05, nms_thresh=0.5, detections_per_image=100,
                                     rpn_pre_nms_topk=1000, rpn_post_nms_topk=1000, rpn_nms_thresh=0.7)


def _edited(edit):
    value = json.loads(R50_FPN_MASK.to_json())
    edit(value)
    return json.dumps(value)


@pytest.mark.parametrize("edit, message", [
    (lambda v: v.pop("version"), "model.json's model info is version None, this d2tf reads version 1"),
    (lambda v: v.update(version=2), "model.json's model info is version 2, this d2tf reads version 1"),
    (lambda v: v.pop("num_classes"),
     "model.json's model info does not match this d2tf's ModelInfo (missing: num_classes; unknown: none)"),
    (lambda v: v.update(colour="red"),
     "model.json's model info does not match this d2tf's ModelInfo (missing: none; unknown: 'colour')"),
    (lambda v: v["architecture"].pop("depth"),
     "model.json's model info does not match this d2tf's Architecture (missing: depth; unknown: none)"),
    (lambda v: v["pooler"].update(box=[7, 0]), "model.json's model info has list for a Pooler"),
    (lambda v: v.update(test=None), "model.json's model info has NoneType for a TestSettings"),
], ids=["no version", "another version", "a field missing", "a field unknown", "a nested field missing",
        "a pooler not a mapping", "a part not a mapping"])
def test_info_of_another_shape_or_version_is_refused_in_one_line(edit, message):
    with pytest.raises(D2TFError) as refused:
        ModelInfo.from_json(_edited(edit), "model.json")
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_optional_fields_may_be_left_out():
    """Fields with a default (keypoints, Panoptic FPN's stuff classes) are absent from infos of models without them."""
    info = ModelInfo.from_json(_edited(lambda v: [v.pop(k) for k in ("num_keypoints", "keypoint_skeleton",
                                                                    "sem_seg_classes")]), "model.json")
    assert (info.num_keypoints, info.keypoint_skeleton, info.sem_seg_classes) == (None, [], None)
