"""Model infos for tests that judge a stage without exporting a model: R50-FPN Mask R-CNN's as export writes it
(tests/test_export.py checks export's own against the same values), changed where a test needs another model."""

import dataclasses

from core import contract
from core.model_info import Architecture, Input, ModelInfo, Pooler, Resize, Source, TestSettings

_BOX_POOLER = Pooler(type="ROIAlignV2", resolution=7, sampling_ratio=0, aligned=True)

R50_FPN_MASK = ModelInfo(
    d2tf_version="0",
    source=Source(config="x.yaml", weights="/w/model.pkl", weights_sha256="ab" * 32),
    architecture=Architecture(
        name="R50-FPN Mask R-CNN", meta="GeneralizedRCNN", backbone="FPN", depth=50, mask=True, keypoints=False,
        cascade=False, class_agnostic=False, norm="FrozenBN", aligned=True, groups=1, width_per_group=64,
        stride_in_1x1=True, reference_config="COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"),
    num_classes=80,
    class_names=None,
    input=Input(size_divisibility=32, traced_size=[512, 640]),
    pixel_mean_bgr=[103.53, 116.28, 123.675],
    pixel_std_bgr=[1.0, 1.0, 1.0],
    outputs=contract.onnx_outputs(mask=True),
    pooler={"box": _BOX_POOLER, "mask": dataclasses.replace(_BOX_POOLER, resolution=14)},
    mask_resolution=28,
    test=TestSettings(score_thresh=0.05, nms_thresh=0.5, detections_per_image=100, rpn_pre_nms_topk=1000,
                      rpn_post_nms_topk=1000, rpn_nms_thresh=0.7),
    resize=Resize(min_size_test=800, max_size_test=1333),
    onnx_opset=16,
)


def model_info(**changes):
    """R50_FPN_MASK with `changes`: a field's new value, or for a part (architecture, source, test, resize, input) a
    dict of the part's fields to change."""
    for name, value in changes.items():
        part = getattr(R50_FPN_MASK, name)
        if dataclasses.is_dataclass(part) and isinstance(value, dict):
            changes[name] = dataclasses.replace(part, **value)
    return dataclasses.replace(R50_FPN_MASK, **changes)
