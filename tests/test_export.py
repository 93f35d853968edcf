"""export stage: detectron2 (PyTorch) -> model.onnx, checked in onnxruntime against detectron2 itself."""

import contextlib
import hashlib
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from core import D2TFError, contract, zoo
from core.metadata import read_info
from core.model_info import Architecture, Pooler, Resize, TestSettings
from core.synthetic import synthetic_image
from export.model import build_model
from runners import onnx_runner
from tests.builds import DETECTIONS, IMAGES, RESIZE, RPN_TOPK, SUITE, TRACE_SIZE
from tests.builds import config_yaml as _cfg_yaml
from tests.parity import assert_same_outputs

EXAMPLE = zoo.DEFAULT_EXAMPLE



@pytest.mark.parametrize("config", SUITE, ids=zoo.short_name)
def test_onnxruntime_matches_detectron2_at_two_sizes(config, pipeline):
    p = pipeline(config)
    reference, candidate = p.outputs("detectron2"), p.outputs("model.onnx")
    assert sorted(reference) == sorted(IMAGES)
    for key in reference:
        ref, got = reference[key], candidate[key]
        assert sorted(got) == sorted(ref) == sorted(p.info.outputs)
        assert_same_outputs(ref, got, p.tolerance)  # verify's: the floor, or 10x detectron2's own noise


@pytest.mark.architecture(EXAMPLE)
def test_model_info_travels_in_the_onnx_and_model_json_is_its_copy(pipeline):
    p = pipeline(EXAMPLE)
    proto = onnx.load(str(p.out / "model.onnx"), load_external_data=False)
    info = read_info(proto, "model.onnx")
    assert info == p.info, "model.json is a readable copy of the metadata"
    assert json.loads((p.out / "model.json").read_text())["version"] == 1
    assert info.architecture == Architecture(
        name="R50-FPN Mask R-CNN", backbone="FPN", depth=50, mask=True, keypoints=False, cascade=False,
        class_agnostic=False, norm="FrozenBN", aligned=True, groups=1, width_per_group=64, stride_in_1x1=True,
        meta="GeneralizedRCNN", reference_config=EXAMPLE)
    assert info.num_classes == 80
    assert info.pixel_mean_bgr == [103.53, 116.28, 123.675]
    assert info.input.format == "BGR" and info.input.size_divisibility == 32
    assert info.pooler["box"] == Pooler(type="ROIAlignV2", resolution=7, sampling_ratio=0, aligned=True)
    assert info.mask_resolution == 28
    assert info.test == TestSettings(score_thresh=0.05, nms_thresh=0.5, detections_per_image=DETECTIONS,
                                     rpn_pre_nms_topk=RPN_TOPK, rpn_post_nms_topk=RPN_TOPK, rpn_nms_thresh=0.7)
    assert info.resize == Resize(min_size_test=RESIZE[0], max_size_test=RESIZE[1])
    assert info.source.weights_sha256 == hashlib.sha256(p.weights.read_bytes()).hexdigest()

    props = {prop.key: prop.value for prop in proto.metadata_props}
    assert props["source_config"] == str(p.yaml) and props["weights_sha256"] == info.source.weights_sha256
    assert str(p.yaml) in proto.doc_string
    names = [n.name for n in proto.graph.node]
    assert any(n.startswith("/backbone/bottom_up/res2/") for n in names), "node names carry module paths"
    assert any(n.startswith("/roi_heads/mask_head/") for n in names)
    assert [i.name for i in proto.graph.input] == [contract.INPUT]
    assert [o.name for o in proto.graph.output] == contract.onnx_outputs(mask=True)
    assert proto.opset_import[0].version == 16


def test_retinanet_model_info_carries_its_head_and_no_pooler(tmp_path):
    """RetinaNet's class count and test values come from MODEL.RETINANET, which the R-CNN keys do not describe."""
    from export.info import model_info
    from export.supported import check_supported

    weights = tmp_path / "model.pkl"
    weights.write_bytes(b"digested, not read")
    cfg = zoo.load_config("COCO-Detection/retinanet_R_101_FPN_3x.yaml").clone()
    cfg.defrost()
    cfg.MODEL.RETINANET.NUM_CLASSES, cfg.MODEL.RETINANET.SCORE_THRESH_TEST = 7, 0.2
    info = model_info(cfg, check_supported(cfg), "retinanet.yaml", weights, (256, 320))
    assert info.architecture.name == "R101-FPN RetinaNet" and info.architecture.meta == "RetinaNet"
    assert (info.num_classes, info.class_names, info.pooler, info.mask_resolution) == (7, None, {}, None)
    assert info.test == TestSettings(score_thresh=0.2, nms_thresh=0.5, detections_per_image=100, topk_candidates=1000)
    assert info.outputs == ["boxes", "scores", "classes"]


@pytest.mark.parametrize("zoo_config, name, outputs, num_classes, names, test", [
    ("COCO-Detection/rpn_R_50_C4_1x.yaml", "R50-C4 RPN", ["proposals", "objectness"], 1, None,
     TestSettings(rpn_pre_nms_topk=12000, rpn_post_nms_topk=2000, rpn_nms_thresh=0.7)),
    ("Misc/semantic_R_50_FPN_1x.yaml", "R50-FPN semantic FPN", ["sem_seg"], 54, 54, TestSettings()),
    ("COCO-PanopticSegmentation/panoptic_fpn_R_101_3x.yaml", "R101-FPN Panoptic FPN",
     ["boxes", "scores", "classes", "masks", "sem_seg", "proposals", "objectness"], 80, 80, None),
    ("Misc/panoptic_fpn_R_101_dconv_cascade_gn_3x.yaml", "R101-FPN Cascade Panoptic FPN, GN",
     ["boxes", "scores", "classes", "masks", "sem_seg", "proposals", "objectness"], 80, 80, None),
], ids=["rpn", "semantic", "panoptic", "cascade panoptic"])
def test_model_info_of_each_meta_architecture(zoo_config, name, outputs, num_classes, names, test, tmp_path):
    """Each meta-architecture's outputs, classes (an RPN's one, a semantic FPN's stuff classes) and test values."""
    from export.info import model_info
    from export.supported import check_supported

    weights = tmp_path / "model.pkl"
    weights.write_bytes(b"digested, not read")
    cfg = zoo.load_config(zoo_config)  # not `config`: conftest would take it for an architecture to build
    info = model_info(cfg, check_supported(cfg), zoo_config, weights, (256, 320))
    assert (info.architecture.name, info.outputs, info.num_classes) == (name, outputs, num_classes)
    assert (info.class_names and len(info.class_names)) == names
    if test is not None:
        assert info.test == test
    else:  # Panoptic FPN: Mask R-CNN's values and its semantic head's class count
        assert info.pooler["mask"].resolution == 14 and info.sem_seg_classes == 54


@pytest.mark.parametrize("zoo_config, compared", [("COCO-Detection/rpn_R_50_C4_1x.yaml", {"proposals"}),
                                                  ("Misc/semantic_R_50_FPN_1x.yaml", {"sem_seg"}),
                                                  ("COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml",
                                                   {"boxes", "sem_seg", "proposals"})],
                         ids=["rpn", "semantic", "panoptic"])
def test_export_wrapper_outputs_are_detectron2s_forward(zoo_config, compared):
    """What export traces (ExportWrapper) is detectron2's own forward on an image at its output size, bit for bit:
    an RPN's proposals, a semantic FPN's logits (its postprocessing crops the padding and resizes to the same size),
    Panoptic FPN's logits, instances and its RPN's proposals. Random initial weights; 300x452 is padded on FPN."""
    import torch
    from detectron2.modeling import build_model as d2_build_model

    from export.model import ExportWrapper

    torch.manual_seed(0)
    model = d2_build_model(zoo.load_config(zoo_config)).eval()
    image = synthetic_image(*IMAGES["synthetic2_300x452"][1], seed=2)
    wrapper = ExportWrapper(model)
    with torch.no_grad():
        got = dict(zip(wrapper.outputs, (lambda v: v if isinstance(v, tuple) else (v,))(
            wrapper(torch.from_numpy(image)))))
        inputs = [{"image": torch.from_numpy(image).permute(2, 0, 1)}]
        forward = model(inputs)[0]
        if "boxes" in got:  # a two-stage detector: the proposals its RPN makes
            images = model.preprocess_image(inputs)
            forward["proposals"] = model.proposal_generator(images, model.backbone(images.tensor), None)[0][0]
    assert {"proposals", "sem_seg", "boxes"} & set(got) == compared, "the branches below that compare this model"
    if "proposals" in got:
        assert torch.equal(got["proposals"], forward["proposals"].proposal_boxes.tensor)
        assert torch.equal(got["objectness"], forward["proposals"].objectness_logits)
        assert len(got["objectness"]) >= 5
    if "sem_seg" in got:
        assert got["sem_seg"].shape == forward["sem_seg"].shape == (54, *image.shape[:2])
        assert torch.equal(got["sem_seg"], forward["sem_seg"])
    if "boxes" in got:  # R-CNN's instances, less those whose box is empty, which detectron2's postprocessing drops
        boxes = got["boxes"]
        kept = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        assert torch.equal(got["scores"][kept], forward["instances"].scores) and len(forward["instances"]) >= 1


@pytest.mark.architecture(EXAMPLE)
def test_onnx_holds_each_checkpoint_tensor_unfolded_under_its_name(pipeline):
    from core.checkpoint import load_weights

    p = pipeline(EXAMPLE)
    proto = onnx.load(str(p.out / "model.onnx"))
    weights = load_weights(p.weights)
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    assert sorted(initializers) == sorted(weights)
    for name, value in weights.items():
        np.testing.assert_array_equal(initializers[name], value, err_msg=name)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("BatchNormalization") == 53, "R50: one per FrozenBN, not folded into the convs"


@pytest.mark.parametrize(
    "config",
    [
        "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
        "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml",
        "Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml",
    ],
    ids=zoo.short_name,
)
def test_zero_detections_give_empty_outputs(config, high_threshold):
    """Traced with detections, run on an image with none: every output is empty, nothing fails."""
    exported, grey, _ = high_threshold(config)
    sess = onnx_runner.session(exported)
    assert len(onnx_runner.run(sess, synthetic_image(*TRACE_SIZE, seed=0))["scores"]) > 0, "trace image must detect"
    got = onnx_runner.run(sess, grey)
    shapes = {k: v.shape for k, v in got.items() if k in contract.served_outputs(got)}
    assert shapes == {"boxes": (0, 4), "scores": (0,), "classes": (0,), "masks": (0, *got["masks"].shape[1:])}
    assert got["proposals"].shape == (len(got["objectness"]), 4), "the RPN's proposals, whatever the heads keep"


@pytest.mark.parametrize(
    "body, named",
    [
        ("MODEL:\n  RESNETS:\n    NORM: LN\n", ["MODEL.RESNETS.NORM='LN' (supported: 'BN', 'FrozenBN', 'GN', "
                                                "'SyncBN', 'naiveSyncBN', 'nnSyncBN')"]),
        ("MODEL:\n  RESNETS:\n    DEPTH: 18\n    RES2_OUT_CHANNELS: 64\n    NUM_GROUPS: 32\n",
         ["MODEL.RESNETS.NUM_GROUPS=32 (detectron2 builds R18's BasicBlocks with 1 only)"]),
        ("MODEL:\n  ROI_MASK_HEAD:\n    POOLER_TYPE: ROIAlignRotated\n",
         ["MODEL.ROI_MASK_HEAD.POOLER_TYPE='ROIAlignRotated' (rotated boxes"]),
        ("MODEL:\n  ROI_BOX_HEAD:\n    POOLER_TYPE: ROIPool\n", ["MODEL.ROI_BOX_HEAD.POOLER_TYPE='ROIPool' (max "
                                                              "pooling per bin, which traces to ONNX MaxRoiPool"]),
        # deformable convolution of the kinds detectron2 computes on GPUs only, and in BasicBlocks
        ("MODEL:\n  RESNETS:\n    DEFORM_ON_PER_STAGE: [False, True, True, True]\n    DEFORM_MODULATED: True\n",
         ["MODEL.RESNETS.DEFORM_MODULATED=True (modulated deformable convolution: detectron2 computes it on GPUs "
          "only"]),
        ("MODEL:\n  RESNETS:\n    DEFORM_ON_PER_STAGE: [False, False, False, True]\n    DEFORM_NUM_GROUPS: 2\n",
         ["MODEL.RESNETS.DEFORM_NUM_GROUPS=2 (deformable convolution with more than one offset group"]),
        ("MODEL:\n  RESNETS:\n    DEPTH: 34\n    RES2_OUT_CHANNELS: 64\n    DEFORM_ON_PER_STAGE: [False, True, True, "
         "True]\n", ["MODEL.RESNETS.DEFORM_ON_PER_STAGE=[False, True, True, True] (detectron2 builds R34's "
                     "BasicBlocks without deformable convolution)"]),
        ("MODEL:\n  KEYPOINT_ON: True\n", ["MODEL.MASK_ON=True (the R50-FPN Keypoint R-CNN d2tf converts has False)"]),
        ("MODEL:\n  KEYPOINT_ON: True\n  ROI_KEYPOINT_HEAD:\n    POOLER_TYPE: ROIPool\n",
         ["MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE='ROIPool' (max pooling per bin"]),
        # a head the user's code registers: said so; one detectron2 has, but another architecture's: the reference's
        ("MODEL:\n  ROI_BOX_HEAD:\n    NAME: FastRCNNConvFCHead2\n", ["MODEL.ROI_BOX_HEAD.NAME='FastRCNNConvFCHead2' "
                                                                     "(not a module of detectron2's own"]),
        ("MODEL:\n  ANCHOR_GENERATOR:\n    NAME: RotatedAnchorGenerator\n",
         ["MODEL.ANCHOR_GENERATOR.NAME='RotatedAnchorGenerator' (the R50-FPN Mask R-CNN d2tf converts has "
          "'DefaultAnchorGenerator')"]),
        ("MODEL:\n  RESNETS:\n    DEPTH: 34\n", ["MODEL.RESNETS.RES2_OUT_CHANNELS=256 (detectron2 builds R34's "
                                                 "BasicBlocks with 64 only)"]),
        ("MODEL:\n  RESNETS:\n    DEPTH: 200\n", ["MODEL.RESNETS.DEPTH=200 (supported: 18, 34, 50, 101, 152)"]),
        ("MODEL:\n  META_ARCHITECTURE: PanopticDeepLab\n", ["MODEL.META_ARCHITECTURE='PanopticDeepLab' (not a module "
                                                          "of detectron2's own"]),
        ("MODEL:\n  META_ARCHITECTURE: SemanticSegmentor\n  BACKBONE:\n    NAME: build_resnet_backbone\n",
         ["MODEL.BACKBONE.NAME='build_resnet_backbone' (supported: 'build_resnet_fpn_backbone')"]),
        ("MODEL:\n  META_ARCHITECTURE: ProposalNetwork\n", ["MODEL.MASK_ON=True (the R50-FPN RPN d2tf converts has "
                                                          "False)"]),
        ("MODEL:\n  META_ARCHITECTURE: RetinaNet\n  BACKBONE:\n    NAME: build_retinanet_resnet_fpn_backbone\n"
         "  RETINANET:\n    NORM: GN\n", ["MODEL.RETINANET.NORM='GN' (supported: '', 'BN', 'FrozenBN', 'SyncBN', "
                                         "'naiveSyncBN', 'nnSyncBN')"]),
        ("MODEL:\n  META_ARCHITECTURE: RetinaNet\n", ["MODEL.BACKBONE.NAME='build_resnet_fpn_backbone' (supported: "
                                                    "'build_retinanet_resnet_fpn_backbone')"]),
        ("MODEL:\n  BACKBONE:\n    NAME: build_resnet_backbone\n", ["StandardROIHeads"]),
        ("INPUT:\n  FORMAT: YUV-BT.601\n", ["INPUT.FORMAT='YUV-BT.601' (supported: 'BGR', 'RGB')"]),
        ("MODEL:\n  RPN:\n    POST_NMS_TOPK_TEST: 300\n", ["PRE_NMS_TOPK_TEST=1000 != MODEL.RPN.POST_NMS_TOPK_TEST=300",
                                                         "RPN.TEST_PER_LEVEL_NMS_TOPK"]),
    ],
)
def test_unsupported_configs_are_refused_naming_each_key(tmp_path, body, named):
    from export.supported import check_supported

    cfg = zoo.load_config(_cfg_yaml(tmp_path, "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml", body))
    with pytest.raises(D2TFError, match="unsupported config") as err:
        check_supported(cfg)
    for text in named:
        assert text in str(err.value)


def test_carried_values_and_training_keys_are_accepted(tmp_path):
    from export.supported import check_supported

    body = (
        "MODEL:\n  ROI_HEADS:\n    NUM_CLASSES: 3\n    SCORE_THRESH_TEST: 0.3\n    BATCH_SIZE_PER_IMAGE: 64\n"
        "  RESNETS:\n    STRIDE_IN_1X1: False\n  PIXEL_STD: [57.375, 57.12, 58.395]\n  BACKBONE:\n    FREEZE_AT: 0\n"
        "  RPN:\n    PRE_NMS_TOPK_TEST: 3000\n    POST_NMS_TOPK_TEST: 300\nTEST:\n  DETECTIONS_PER_IMAGE: 50\n"
    )
    arch, tuned = check_supported(zoo.load_config(_cfg_yaml(tmp_path, "COCO-Detection/faster_rcnn_R_101_C4_3x.yaml",
                                                            body)))
    assert arch.name == "R101-C4 Faster R-CNN" and tuned == {}


# A trained model's tuned keys (issue rows: anchors for small or elongated objects, another RPN NMS threshold, a
# lighter backbone, RGB input): each converts, recorded as tuned, with an npz where tensorpack's flags express it,
# else the reason (the last item).
TUNED = {
    "anchors": ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
                "MODEL:\n  ANCHOR_GENERATOR:\n    SIZES: [[16], [32], [64], [128], [256]]\n"
                "    ASPECT_RATIOS: [[0.25, 0.5, 1.0, 2.0, 4.0]]\n",
                "R50-FPN Mask R-CNN", {"MODEL.ANCHOR_GENERATOR.SIZES": [[16], [32], [64], [128], [256]],
                                       "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": [[0.25, 0.5, 1.0, 2.0, 4.0]]}, "BGR",
                None),
    "rpn nms": ("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml", "MODEL:\n  RPN:\n    NMS_THRESH: 0.6\n",
                "R50-FPN Faster R-CNN", {"MODEL.RPN.NMS_THRESH": 0.6}, "BGR", None),
    "R34": ("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
            "MODEL:\n  RESNETS:\n    DEPTH: 34\n    RES2_OUT_CHANNELS: 64\n",
            "R34-FPN Faster R-CNN", {"MODEL.RESNETS.DEPTH": 34, "MODEL.RESNETS.RES2_OUT_CHANNELS": 64}, "BGR",
            "^MODEL.RESNETS.DEPTH=34: detectron2 builds it of BasicBlocks"),
    "RGB": ("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
            "INPUT:\n  FORMAT: RGB\nMODEL:\n  PIXEL_MEAN: [123.675, 116.28, 103.53]\n"
            "  PIXEL_STD: [58.395, 57.12, 57.375]\n  RESNETS:\n    STRIDE_IN_1X1: False\n",
            "R50-FPN Faster R-CNN", {}, "RGB", None),
    "X50-32x4d": ("COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml",
                  "MODEL:\n  RESNETS:\n    DEPTH: 50\n    WIDTH_PER_GROUP: 4\n", "X50-32x4d-FPN Faster R-CNN",
                  {"MODEL.RESNETS.DEPTH": 50, "MODEL.RESNETS.WIDTH_PER_GROUP": 4}, "BGR", "^ResNeXt's grouped"),
    "deformable": ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
                   "MODEL:\n  RESNETS:\n    DEFORM_ON_PER_STAGE: [False, True, True, True]\n", "R50-FPN Mask R-CNN",
                   {"MODEL.RESNETS.DEFORM_ON_PER_STAGE": [False, True, True, True]}, "BGR",
                   "^MODEL.RESNETS.DEFORM_ON_PER_STAGE=\\[False,True,True,True\\]: tensorpack's ResNet has no "
                   "deformable"),
    # keys detectron2 does not read: the kind of deformable convolution with none, and a deformable one's offset
    # groups with one deformable stage's
    "no deformable stage": ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
                            "MODEL:\n  RESNETS:\n    DEFORM_MODULATED: True\n    DEFORM_NUM_GROUPS: 4\n",
                            "R50-FPN Mask R-CNN", {}, "BGR", None),
    "C4 mask pooler": ("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml",  # unused: C4 pools masks as boxes
                       "MODEL:\n  ROI_MASK_HEAD:\n    POOLER_RESOLUTION: 7\n    POOLER_TYPE: ROIPool\n",
                       "R50-C4 Mask R-CNN", {}, "BGR", None),
    "FPN averaged": ("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml", "MODEL:\n  FPN:\n    FUSE_TYPE: avg\n",
                     "R50-FPN Faster R-CNN", {"MODEL.FPN.FUSE_TYPE": "avg"}, "BGR",
                     "^MODEL.FPN.FUSE_TYPE=avg: tensorpack's FPN sums"),
    "R101 class-agnostic": ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
                            "MODEL:\n  RESNETS:\n    DEPTH: 101\n  ROI_BOX_HEAD:\n    CLS_AGNOSTIC_BBOX_REG: True\n"
                            "  ROI_MASK_HEAD:\n    CLS_AGNOSTIC_MASK: True\n",
                            "R101-FPN Mask R-CNN, class-agnostic", {"MODEL.RESNETS.DEPTH": 101}, "BGR",
                            "^class-agnostic"),
    "class-agnostic Faster": ("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
                              "MODEL:\n  ROI_BOX_HEAD:\n    CLS_AGNOSTIC_BBOX_REG: True\n",
                              "R50-FPN Faster R-CNN, class-agnostic",
                              {"MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG": True},
                              "BGR", "^class-agnostic"),
    "cascade of 2": ("Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml",
                     "MODEL:\n  ROI_BOX_CASCADE_HEAD:\n    IOUS: [0.5, 0.6]\n"
                     "    BBOX_REG_WEIGHTS: [[10, 10, 5, 5], [20, 20, 10, 10]]\n", "R50-FPN Cascade Mask R-CNN",
                     {"MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS": [[10, 10, 5, 5], [20, 20, 10, 10]]}, "BGR",
                     "a cascade of 2 stages; tensorpack's has 3"),
    # A GN ResNet and FPN with the heads unnormalised: compared with the zoo's GN model, whose heads are.
    "GN backbone": ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
                    "MODEL:\n  RESNETS:\n    NORM: GN\n  FPN:\n    NORM: GN\n", "R50-FPN Mask R-CNN, GN",
                    {"MODEL.ROI_BOX_HEAD.NUM_CONV": 0, "MODEL.ROI_BOX_HEAD.NUM_FC": 2, "MODEL.ROI_BOX_HEAD.NORM": "",
                     "MODEL.ROI_MASK_HEAD.NORM": ""}, "BGR", "^MODEL.ROI_BOX_HEAD.NORM=: tensorpack's normalised"),
    "BN ResNet": ("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml", "MODEL:\n  RESNETS:\n    NORM: BN\n",
                  "R50-FPN Faster R-CNN, BN", {"MODEL.RESNETS.NORM": "BN"}, "BGR",
                  "^MODEL.RESNETS.NORM=BN: d2tf writes tensorpack's FreezeBN"),
    "C4 unaligned": ("COCO-Detection/faster_rcnn_R_50_C4_3x.yaml",
                     "MODEL:\n  ROI_BOX_HEAD:\n    POOLER_TYPE: ROIAlign\n",
                     "R50-C4 Faster R-CNN, unaligned ROIAlign", {"MODEL.ROI_BOX_HEAD.POOLER_TYPE": "ROIAlign"}, "BGR",
                     "^ROIAlign without the half-pixel shift"),
    "FPN on res3-res5": ("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
                         "MODEL:\n  RESNETS:\n    OUT_FEATURES: [res3, res4, res5]\n  FPN:\n"
                         "    IN_FEATURES: [res3, res4, res5]\n  ANCHOR_GENERATOR:\n"
                         "    SIZES: [[64], [128], [256], [512]]\n"
                         "  RPN:\n    IN_FEATURES: [p3, p4, p5, p6]\n  ROI_HEADS:\n    IN_FEATURES: [p3, p4, p5]\n",
                         "R50-FPN Faster R-CNN",
                         {"MODEL.RESNETS.OUT_FEATURES": ["res3", "res4", "res5"],
                          "MODEL.FPN.IN_FEATURES": ["res3", "res4", "res5"],
                          "MODEL.ANCHOR_GENERATOR.SIZES": [[64], [128], [256], [512]],
                          "MODEL.RPN.IN_FEATURES": ["p3", "p4", "p5", "p6"],
                          "MODEL.ROI_HEADS.IN_FEATURES": ["p3", "p4", "p5"]}, "BGR",
                         "^MODEL.FPN.IN_FEATURES=.*: tensorpack's FPN takes res2-res5"),
    "proposal size, stem": ("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
                            "MODEL:\n  PROPOSAL_GENERATOR:\n    MIN_SIZE: 2\n  RESNETS:\n    STEM_OUT_CHANNELS: 32\n",
                            "R50-FPN Faster R-CNN",
                            {"MODEL.PROPOSAL_GENERATOR.MIN_SIZE": 2, "MODEL.RESNETS.STEM_OUT_CHANNELS": 32}, "BGR",
                            "^MODEL.PROPOSAL_GENERATOR.MIN_SIZE=2: d2tf sets tensorpack's RPN.MIN_SIZE"),
    # RetinaNet's loss and initialisation are training's: not compared
    "RetinaNet's focal loss": ("COCO-Detection/retinanet_R_50_FPN_3x.yaml",
                               "MODEL:\n  RETINANET:\n    FOCAL_LOSS_GAMMA: 1.5\n    PRIOR_PROB: 0.02\n",
                               "R50-FPN RetinaNet", {}, "BGR", "^RetinaNet, a one-stage detector"),
    "X50 keypoints": ("COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml",
                      "MODEL:\n  RESNETS:\n    NUM_GROUPS: 32\n    WIDTH_PER_GROUP: 4\n",
                      "X50-32x4d-FPN Keypoint R-CNN",
                      {"MODEL.RESNETS.NUM_GROUPS": 32, "MODEL.RESNETS.WIDTH_PER_GROUP": 4},
                      "BGR", "^a keypoint head"),
}


def test_class_names_are_the_users_and_as_many_as_the_classes(tmp_path):
    from export.info import model_info
    from export.supported import check_supported

    cfg = zoo.load_config(_cfg_yaml(tmp_path, "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
                                    "MODEL:\n  ROI_HEADS:\n    NUM_CLASSES: 3\n"))
    weights = tmp_path / "model.pkl"
    weights.write_bytes(b"digested, not read")
    info = model_info(cfg, check_supported(cfg), "c.yaml", weights, (256, 320), ["cat", "dog", "bird"])
    assert info.class_names == ["cat", "dog", "bird"]
    assert model_info(cfg, check_supported(cfg), "c.yaml", weights, (256, 320)).class_names is None, (
        "COCO's 80 names are not a 3-class model's")
    with pytest.raises(D2TFError, match="^--class-names gives 2 names, the model predicts 3 classes$"):
        model_info(cfg, check_supported(cfg), "c.yaml", weights, (256, 320), ["cat", "dog"])


@pytest.mark.parametrize("base, body, name, tuned, format, no_npz", TUNED.values(), ids=TUNED)
def test_a_trained_models_tuned_keys_are_accepted_and_recorded(base, body, name, tuned, format, no_npz, tmp_path):
    from export.info import model_info
    from export.supported import check_supported
    from tf_import.tensorpack_config import NotExpressible, check_expressible

    cfg = zoo.load_config(_cfg_yaml(tmp_path, base, body))
    supported = check_supported(cfg)
    assert (supported[0].name, supported[1]) == (name, tuned)
    weights = tmp_path / "model.pkl"
    weights.write_bytes(b"digested, not read")
    info = model_info(cfg, supported, "custom.yaml", weights, (256, 320))
    assert (info.tuned, info.input.format) == (tuned, format)
    if no_npz is None:
        check_expressible(info)
    else:
        with pytest.raises(NotExpressible, match=no_npz):
            check_expressible(info)


def test_all_seed_architectures_are_recognised():
    from export.supported import check_supported

    references = {c: check_supported(zoo.load_config(c))[0].reference_config for c in zoo.SUITE_ARCHITECTURES}
    # each its own reference, but LVIS's (its graph is the COCO model's) and the deformable one (its stages tuned)
    assert references == {**{c: c for c in zoo.SUITE_ARCHITECTURES}, **{lvis: coco for coco, lvis in zoo.LVIS.items()},
                          zoo.DEFORMABLE: zoo.DEFAULT_EXAMPLE}


def _weights(checkpoint_path):
    from core.checkpoint import load_weights

    return load_weights(checkpoint_path("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml")[1])


@pytest.mark.architecture("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml")
def test_mismatched_weights_are_refused_by_name(checkpoint_path):
    weights = _weights(checkpoint_path)  # the suite's 3-class variant (tests/builds.py CUSTOM)
    del weights["roi_heads.box_head.fc1.weight"]
    weights["roi_heads.extra.weight"] = np.zeros(3, np.float32)
    weights["roi_heads.box_predictor.cls_score.weight"] = np.zeros((11, 512), np.float32)
    weights["proposal_generator.anchor_generator.cell_anchors.0"] = np.zeros((3, 4), np.float32)  # allowed
    with pytest.raises(D2TFError) as err:
        build_model(zoo.load_config(str(checkpoint_path("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml")[0])), weights)
    message = str(err.value)
    assert "missing: roi_heads.box_head.fc1.weight" in message
    assert "unexpected: roi_heads.extra.weight" in message
    assert "wrong shape: roi_heads.box_predictor.cls_score.weight (11, 512) (model has (4, 512))" in message
    assert "cell_anchors" not in message


@pytest.mark.architecture("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml")
def test_weights_of_another_architecture_are_refused(checkpoint_path):
    with pytest.raises(D2TFError, match=r"missing: roi_heads\.box_head\.fc2\.bias, .* and 11 more "
                                        r"\(roi_heads\.mask_head: 12, roi_heads\.box_head: 2\)"):  # CUSTOM: 4conv1fc
        build_model(zoo.load_config("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"), _weights(checkpoint_path))


def test_a_config_detectron2_cannot_build_is_refused_in_one_line(tmp_path):
    """Keys each accepted that detectron2's builders reject together (its asserts): the error, no traceback."""
    from export.model import build_model

    body = "MODEL:\n  ANCHOR_GENERATOR:\n    SIZES: [[32], [64, 90], [128], [256], [512]]\n"
    cfg = zoo.load_config(_cfg_yaml(tmp_path, "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml", body))
    with pytest.raises(D2TFError, match="^detectron2 cannot build this config: .*same number of anchors"):
        build_model(cfg, {})


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", "COCO-Detection/no_such_model", "--weights", "x.pkl"], "error: unknown config"),
        (["--config", zoo.DEFAULT_EXAMPLE, "--weights", "/nonexistent/model_final.pkl"], "error: weights file not found"),
        (["--config", zoo.DEFAULT_EXAMPLE, "--weights", "x.pkl", "--trace-size", "big"], "expected HEIGHTxWIDTH"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "export", *args, "--out", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "model.onnx").exists()


def _box_head_outputs(proposals, classes, agnostic, seed):
    """Box-head outputs as fast_rcnn_inference_single_image takes them: [R, K*4] boxes (or [R, 4]) in a few
    clusters of similar boxes, so NMS has work in every class, and softmax scores [R, K+1] of which a few classes
    take most, so the detections kept hold many boxes of one class."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 8, proposals)
    centres = rng.uniform(40, 360, (8, 1, 2))[cluster] + rng.normal(0, 4, (proposals, 1, 2))
    sizes = rng.uniform(20, 80, (8, 1, 2))[cluster] * rng.uniform(0.8, 1.2, (proposals, 1, 2))
    per_box = 1 if agnostic else classes
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], 2) + rng.normal(0, 3, (proposals, per_box, 4))
    logits = rng.normal(0, 1, (proposals, classes + 1)) + rng.normal(0, 2, classes + 1)
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return boxes.reshape(proposals, -1).astype(np.float32), scores.astype(np.float32)


@pytest.mark.parametrize("agnostic", [False, True], ids=["class-specific", "class-agnostic"])
@pytest.mark.parametrize("score_threshold", [1e-4, 0.15])
def test_traced_box_head_nms_is_detectron2s_class_by_class(agnostic, score_threshold):
    """export/per_class_nms.py against detectron2's own fast_rcnn_inference_single_image: eagerly, and traced on 40
    proposals then run in onnxruntime on 150, with 300 classes. At score threshold 1e-4 (LVIS's) every (proposal,
    class) pair reaches NMS: 45,000, where detectron2 runs NMS class by class; at 0.15 the threshold binds."""
    import io

    import onnxruntime
    import torch
    from detectron2.modeling.roi_heads import fast_rcnn

    from export import per_class_nms

    def args(nms_threshold=0.5):  # image shape, score threshold, NMS threshold, detections per image
        return (400, 500), score_threshold, nms_threshold, 100

    class Head(torch.nn.Module):
        def forward(self, boxes, scores):
            result, kept = per_class_nms.fast_rcnn_inference_single_image(boxes, scores, *args())
            return result.pred_boxes.tensor, result.scores, result.pred_classes, kept

    def detectron2(boxes, scores, *args):
        result, kept = fast_rcnn.fast_rcnn_inference_single_image(torch.from_numpy(boxes), torch.from_numpy(scores),
                                                                  *args)
        return [t.numpy() for t in (result.pred_boxes.tensor, result.scores, result.pred_classes, kept)]

    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(Head(), tuple(map(torch.from_numpy, _box_head_outputs(40, 300, agnostic, 1))), buf,
                          dynamo=False, opset_version=16, input_names=["boxes", "scores"],
                          dynamic_axes={"boxes": {0: "n"}, "scores": {0: "n"}})
    onnx_model = onnxruntime.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    boxes, scores = _box_head_outputs(150, 300, agnostic, 2)
    expected = detectron2(boxes, scores, *args())
    # The inputs exercise what they should: the count binds at 1e-4, the threshold at 0.15, NMS at both.
    assert (len(expected[0]) == 100) == (score_threshold < 0.01)
    assert len(detectron2(boxes, scores, *args(nms_threshold=0.6))[0]) > len(expected[0]) or \
        not np.array_equal(detectron2(boxes, scores, *args(nms_threshold=0.6))[3], expected[3])
    eager = [t.numpy() for t in Head()(torch.from_numpy(boxes), torch.from_numpy(scores))]
    traced = onnx_model.run(None, {"boxes": boxes, "scores": scores})
    for result in (eager, traced):
        for got, want in zip(result, expected):
            np.testing.assert_array_equal(got, want)


def test_traced_group_norm_is_group_norm_summed_in_short_runs():
    """torch's own GroupNorm export is one InstanceNormalization over each group's C/G*H*W values, which onnxruntime
    sums serially in float32; export traces the same statistics axis by axis. Checked on a map of another size than
    traced (the reshapes must follow it), against float64."""
    import io

    import onnxruntime
    import torch

    from export.trace import _group_norm_in_short_sums, _patched

    torch.manual_seed(0)
    norm = torch.nn.GroupNorm(32, 256).eval()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.2, 0.2)
    offsets = 10 * torch.rand(1, 256, 1, 1)  # activations whose mean is large against their spread, as after a ReLU

    def exported(patched):
        buf = io.BytesIO()
        with torch.no_grad(), (_patched(torch.nn.GroupNorm, "forward", _group_norm_in_short_sums) if patched
                               else contextlib.nullcontext()):
            torch.onnx.export(norm, (torch.randn(1, 256, 16, 20),), buf, dynamo=False, opset_version=16,
                              input_names=["x"], dynamic_axes={"x": {2: "h", 3: "w"}})
        return onnxruntime.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])

    x = torch.randn(1, 256, 136, 200) + offsets
    groups = x.double().reshape(1, 32, -1)
    expected = ((groups - groups.mean(-1, keepdim=True)) / torch.sqrt(groups.var(-1, unbiased=False, keepdim=True)
                                                                       + norm.eps)).reshape(x.shape)
    expected = (expected * norm.weight.double()[:, None, None] + norm.bias.double()[:, None, None]).detach().numpy()
    original = torch.nn.GroupNorm.forward
    errors = {patched: np.abs(exported(patched).run(None, {"x": x.numpy()})[0] - expected).max()
              for patched in (False, True)}
    assert errors[True] < 3e-6 < errors[False], errors
    assert torch.nn.GroupNorm.forward is original


def _dense_level(rng, anchors, classes):
    """One FPN level as RetinaNet's decoding takes it: sigmoid scores [A, K] of which a few classes take most,
    deltas [A, 4], and anchors [A, 4] in clusters of similar boxes, so NMS has work."""
    cluster = rng.integers(0, 6, anchors)
    centres = rng.uniform(40, 360, (6, 2))[cluster] + rng.normal(0, 4, (anchors, 2))
    sizes = rng.uniform(20, 80, (6, 2))[cluster]
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1)
    logits = rng.normal(-4, 1.5, (anchors, classes)) + rng.normal(0, 1, classes)
    return [x.astype(np.float32) for x in (1 / (1 + np.exp(-logits)), rng.normal(0, 0.1, (anchors, 4)), boxes)]


@pytest.mark.parametrize("topk, score_threshold, limit", [(40, 0.05, 50), (1000, 0.8, 300)],
                         ids=["topk-binds", "threshold-binds"])
def test_traced_retinanet_decoding_is_detectron2s(topk, score_threshold, limit):
    """export/retinanet_inference.py against detectron2's own DenseDetector/RetinaNet decoding: eagerly, and traced
    on three levels of 30-60 anchors then run in onnxruntime on 400-900, with 20 classes."""
    import io

    import onnxruntime
    import torch
    from detectron2.modeling.box_regression import Box2BoxTransform
    from detectron2.modeling.meta_arch.dense_detector import DenseDetector
    from detectron2.modeling.meta_arch.retinanet import RetinaNet
    from detectron2.structures import Boxes

    from export import retinanet_inference

    class Decoding(torch.nn.Module):
        num_classes, test_score_thresh, test_topk_candidates = 20, score_threshold, topk
        test_nms_thresh, max_detections_per_image = 0.5, limit
        box2box_transform = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))
        _decode_multi_level_predictions = DenseDetector._decode_multi_level_predictions

        def __init__(self, restated):
            super().__init__()
            self.restated = restated

        def _decode_per_level_predictions(self, *args):
            decode = retinanet_inference.decode_per_level_predictions if self.restated else \
                DenseDetector._decode_per_level_predictions
            return decode(self, *args)

        def forward(self, *levels):
            scores, deltas, anchors = levels[0::3], levels[1::3], [Boxes(a) for a in levels[2::3]]
            infer = retinanet_inference.inference_single_image if self.restated else RetinaNet.inference_single_image
            result = infer(self, anchors, list(scores), list(deltas), (400, 500))
            return result.pred_boxes.tensor, result.scores, result.pred_classes

    def levels(seed, counts):
        rng = np.random.default_rng(seed)
        return [torch.from_numpy(x) for count in counts for x in _dense_level(rng, count, 20)]

    names = [f"{part}{i}" for i in range(3) for part in ("scores", "deltas", "anchors")]
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(Decoding(True), tuple(levels(1, (60, 45, 30))), buf, dynamo=False, opset_version=16,
                          input_names=names, dynamic_axes={name: {0: "anchors"} for name in names})
    onnx_model = onnxruntime.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    inputs = levels(2, (900, 600, 400))
    with torch.no_grad():
        expected = [t.numpy() for t in Decoding(False)(*inputs)]
        eager = [t.numpy() for t in Decoding(True)(*inputs)]
        above = [int((s > score_threshold).sum()) for s in inputs[0::3]]
        candidates = sum(min(n, topk) for n in above)
    # The inputs exercise what they should: the top-k binds on every level or on none, NMS drops candidates, and
    # the per-image count cuts the detections where the top-k binds.
    assert (min(above) > topk) == (topk == 40) and (max(above) < topk) == (topk == 1000)
    assert 0 < len(expected[0]) < candidates and (len(expected[0]) == limit) == (topk == 40)
    traced = onnx_model.run(None, {name: x.numpy() for name, x in zip(names, inputs)})
    for result in (eager, traced):
        for got, want in zip(result, expected):
            np.testing.assert_array_equal(got, want)


def _keypoint_case(rng, rois, large=False):
    """Heatmaps [R, 17, 56, 56] with a few peaks each, as a keypoint head gives them, and boxes [R, 4] of 2-400 px
    sides (up to 1216 x 800 when `large`), some below one pixel (detectron2 takes sides of at least 1)."""
    maps = rng.normal(0, 1, (rois, 17, 56, 56)).astype(np.float32)
    peaks = rng.integers(0, 56, (rois, 17, 2))
    for r in range(rois):
        for k in range(17):
            maps[r, k, peaks[r, k, 0], peaks[r, k, 1]] += 6
    corners = rng.uniform(0, 300, (rois, 2))
    sides = rng.uniform(2, 1216 if large else 400, (rois, 2)) * (rng.uniform(size=(rois, 1)) > 0.1) + 0.4
    return maps, np.concatenate([corners, corners + sides], 1).astype(np.float32)


def test_traced_keypoint_decoding_is_detectron2s():
    """export/keypoint_inference.py restates detectron2's heatmaps_to_keypoints (scripted while tracing, as a Loop):
    its keypoints' x, y and logits are detectron2's bit for bit, eager and in onnxruntime, on 0, 1 and 20 boxes and
    on boxes up to 1216 x 800; its scores to float round-off. A resize off by round-off would move an argmax about
    once per 100 instances (the regridded instances verify counts are another matter: different boxes)."""
    import io

    import onnxruntime
    import torch
    from detectron2.structures.keypoints import heatmaps_to_keypoints as detectron2

    from export.keypoint_inference import heatmaps_to_keypoints

    class Decode(torch.nn.Module):
        def forward(self, maps, rois):
            return heatmaps_to_keypoints(maps, rois)

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(Decode(), tuple(map(torch.from_numpy, _keypoint_case(rng, 3))), buf, dynamo=False,
                          opset_version=16, input_names=["maps", "rois"], output_names=["keypoints"],
                          dynamic_axes={"maps": {0: "rois"}, "rois": {0: "rois"}, "keypoints": {0: "rois"}})
    session = onnxruntime.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    for rois, large in ((0, False), (1, False), (20, False), (4, True)):
        maps, boxes = _keypoint_case(rng, rois, large)
        with torch.no_grad():
            expected = detectron2(torch.from_numpy(maps), torch.from_numpy(boxes)).numpy().reshape(rois, 17, 4)
            eager = Decode()(torch.from_numpy(maps), torch.from_numpy(boxes)).numpy()
        traced = session.run(None, {"maps": maps, "rois": boxes})[0]
        for got in (eager, traced):
            assert got.shape == expected.shape
            np.testing.assert_array_equal(got[..., :3], expected[..., :3])
            np.testing.assert_allclose(got[..., 3], expected[..., 3], rtol=1e-6, atol=0)


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 1, 1, 1), (2, 1, 1, 4), (1, 2, 2, 1)],
                         ids=["plain", "strided-grouped", "dilated"])
def test_traced_deformable_convolution_is_torchvisions(stride, padding, dilation, groups):
    """export/deform_conv.py against torchvision's deform_conv2d, which detectron2 runs on the CPU: bit for bit
    eagerly, with offsets of up to several pixels that take taps outside the map, one tap exactly a pixel outside
    (which reads 0) and one on the map's last row; traced to ONNX at one size, within float round-off in
    onnxruntime at another (the trace keeps H and W dynamic)."""
    import io

    import onnxruntime
    import torch
    from torchvision.ops import deform_conv2d

    from export.deform_conv import deform_conv

    generator = torch.Generator().manual_seed(stride * 10 + dilation)
    weight = torch.randn(8, 16 // groups, 3, 3, generator=generator)

    def case(height, width):
        x = torch.randn(1, 16, height, width, generator=generator)
        out_h, out_w = [(n + 2 * padding - 2 * dilation - 1) // stride + 1 for n in (height, width)]
        offset = 2.5 * torch.randn(1, 18, out_h, out_w, generator=generator)
        offset[0, 0, 0, 0] = -1.0 - (0 * stride - padding)  # tap (0, 0) of the first output one pixel above row 0
        offset[0, 2, -1, -1] = height - 1 - ((out_h - 1) * stride - padding)  # tap (0, 1) of the last on the last row
        return x, offset

    class Traced(torch.nn.Module):
        def forward(self, x, offset):
            return deform_conv(x, offset, weight, stride, padding, dilation, groups)

    x, offset = case(11, 9)
    expected = deform_conv2d(x, offset, weight, stride=stride, padding=padding, dilation=dilation)
    assert torch.equal(Traced()(x, offset), expected)
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(Traced(), case(7, 12), buf, dynamo=False, opset_version=16, input_names=["x", "offset"],
                          dynamic_axes={"x": {2: "h", 3: "w"}, "offset": {2: "oh", 3: "ow"}})
    session = onnxruntime.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    (traced,) = session.run(None, {"x": x.numpy(), "offset": offset.numpy()})
    np.testing.assert_allclose(traced, expected.numpy(), rtol=0, atol=1e-4)
