"""The model info (core.model_info) of a config: export records it in model.onnx's metadata (core.metadata) and
writes a readable copy as model.json."""

import core
from core import D2TFError, contract
from core.digest import file_sha256
from core.model_info import Architecture, Input, ModelInfo, Pooler, Resize, Source, TestSettings
from export.trace import OPSET


def model_info(cfg, supported, config, weights_path, traced_size, names=None):
    """`supported`: check_supported's (Architecture, tuned keys) of cfg; `names`: the user's class names (else the
    config's test dataset's, when detectron2 knows them for the class count)."""
    arch, tuned = supported
    num_classes, dataset_key, parts = _META_PARTS[arch.meta](cfg, arch)
    if names is not None and len(names) != num_classes:
        raise D2TFError(f"--class-names gives {len(names)} names, the model predicts {num_classes} classes")
    return ModelInfo(
        d2tf_version=core.__version__,
        source=Source(config=config, weights=str(weights_path), weights_sha256=file_sha256(weights_path)),
        architecture=Architecture(
            name=arch.name, meta=arch.meta, backbone=arch.backbone, depth=arch.depth, mask=arch.mask,
            keypoints=arch.keypoints, cascade=arch.cascade, class_agnostic=arch.class_agnostic, norm=arch.norm,
            aligned=arch.aligned, groups=arch.groups, width_per_group=arch.width_per_group,
            stride_in_1x1=bool(cfg.MODEL.RESNETS.STRIDE_IN_1X1), reference_config=arch.reference_config),
        num_classes=num_classes,
        class_names=names or class_names(cfg, num_classes, dataset_key),
        input=Input(size_divisibility=32 if arch.backbone == "FPN" else 0, traced_size=list(traced_size),
                    format=cfg.INPUT.FORMAT),
        tuned=tuned,
        pixel_mean_bgr=list(cfg.MODEL.PIXEL_MEAN),
        pixel_std_bgr=list(cfg.MODEL.PIXEL_STD),
        outputs=contract.onnx_outputs(arch.meta, arch.mask, arch.keypoints),
        **parts,
        # detectron2's test-time ResizeShortestEdge, for evaluating on real images (verify --evaluate).
        resize=Resize(min_size_test=cfg.INPUT.MIN_SIZE_TEST, max_size_test=cfg.INPUT.MAX_SIZE_TEST),
        onnx_opset=OPSET,
    )


def _rcnn_parts(cfg, arch):
    """(class count, the dataset's class names to take, the parts): R-CNN's RoIAlign poolers and test values."""
    # C4's Res5ROIHeads pools once, with the box head's pooler, for boxes and masks
    mask_head = cfg.MODEL.ROI_BOX_HEAD if arch.backbone == "C4" else cfg.MODEL.ROI_MASK_HEAD
    return cfg.MODEL.ROI_HEADS.NUM_CLASSES, "thing_classes", {
        "pooler": {
            "box": _pooler(cfg.MODEL.ROI_BOX_HEAD),
            **({"mask": _pooler(mask_head)} if arch.mask else {}),
            **({"keypoint": _pooler(cfg.MODEL.ROI_KEYPOINT_HEAD)} if arch.keypoints else {}),
        },
        **(_keypoint_parts(cfg) if arch.keypoints else {}),
        "mask_resolution": contract.mask_resolution(arch.backbone, mask_head.POOLER_RESOLUTION) if arch.mask else None,
        "test": TestSettings(score_thresh=cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
                             nms_thresh=cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST,
                             detections_per_image=cfg.TEST.DETECTIONS_PER_IMAGE, **_rpn_test(cfg)),
    }


def _keypoint_parts(cfg):
    """The keypoint count, and the skeleton verify.png draws: pairs of keypoint indices, from the test dataset's
    keypoint_connection_rules when detectron2 knows them for this count, else none."""
    from detectron2.data import MetadataCatalog

    count = cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS
    metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0]) if cfg.DATASETS.TEST else None
    names = list(metadata.get("keypoint_names", ())) if metadata else []
    rules = metadata.get("keypoint_connection_rules", ()) if len(names) == count else ()
    return {"num_keypoints": count, "keypoint_skeleton": [[names.index(a), names.index(b)] for a, b, _ in rules]}


def _rpn_test(cfg):
    return {"rpn_pre_nms_topk": cfg.MODEL.RPN.PRE_NMS_TOPK_TEST, "rpn_post_nms_topk": cfg.MODEL.RPN.POST_NMS_TOPK_TEST,
            "rpn_nms_thresh": cfg.MODEL.RPN.NMS_THRESH}


def _rpn_parts(cfg, arch):
    """An RPN's proposals are of one class, "object"."""
    return 1, None, {"pooler": {}, "mask_resolution": None, "test": TestSettings(**_rpn_test(cfg))}


def _semantic_parts(cfg, arch):
    """A semantic FPN classifies pixels: its classes are the dataset's stuff classes."""
    return cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES, "stuff_classes", {
        "pooler": {}, "mask_resolution": None, "test": TestSettings()}


def _panoptic_parts(cfg, arch):
    """R-CNN's instances (thing classes) and a semantic FPN's logits of SEM_SEG_HEAD.NUM_CLASSES stuff classes."""
    num_classes, names, parts = _rcnn_parts(cfg, arch)
    return num_classes, names, {**parts, "sem_seg_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES}


def _retinanet_parts(cfg, arch):
    """No RoIAlign and no masks: the test values of its one-stage head."""
    retinanet = cfg.MODEL.RETINANET
    return retinanet.NUM_CLASSES, "thing_classes", {
        "pooler": {},
        "mask_resolution": None,
        "test": TestSettings(score_thresh=retinanet.SCORE_THRESH_TEST, nms_thresh=retinanet.NMS_THRESH_TEST,
                             detections_per_image=cfg.TEST.DETECTIONS_PER_IMAGE,
                             topk_candidates=retinanet.TOPK_CANDIDATES_TEST),
    }


_META_PARTS = {"GeneralizedRCNN": _rcnn_parts, "RetinaNet": _retinanet_parts, "ProposalNetwork": _rpn_parts,
               "SemanticSegmentor": _semantic_parts, "PanopticFPN": _panoptic_parts}


def class_names(cfg, num_classes, key="thing_classes"):
    """The names (`key`: thing_classes, stuff_classes; None: none) of the config's first test dataset when detectron2
    knows them for this class count, else None."""
    from detectron2.data import MetadataCatalog

    if key is None or not cfg.DATASETS.TEST:
        return None
    names = MetadataCatalog.get(cfg.DATASETS.TEST[0]).get(key)
    return list(names) if names and len(names) == num_classes else None


def _pooler(head):
    return Pooler(type=head.POOLER_TYPE, resolution=head.POOLER_RESOLUTION, sampling_ratio=head.POOLER_SAMPLING_RATIO,
                  aligned=head.POOLER_TYPE == "ROIAlignV2")
