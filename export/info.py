"""The model info: everything later stages need to know about the model, so they never read the yaml again.
Export records it in model.onnx's metadata (core.metadata) and writes a readable copy as model.json."""

import core
from core import contract
from core.digest import file_sha256
from export.trace import OPSET


def model_info(cfg, arch, config, weights_path, traced_size):
    mask_head = cfg.MODEL.ROI_MASK_HEAD
    box_head = cfg.MODEL.ROI_BOX_HEAD
    return {
        "d2tf_version": core.__version__,
        "source": {"config": config, "weights": str(weights_path), "weights_sha256": file_sha256(weights_path)},
        "architecture": {
            "name": arch.name,
            "backbone": arch.backbone,
            "depth": arch.depth,
            "mask": arch.mask,
            "cascade": arch.cascade,
            "class_agnostic": arch.class_agnostic,
            "norm": arch.norm,
            "aligned": arch.aligned,
            "groups": arch.groups,
            "width_per_group": arch.width_per_group,
            "stride_in_1x1": bool(cfg.MODEL.RESNETS.STRIDE_IN_1X1),
            "reference_config": arch.reference_config,
        },
        "num_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES,
        "class_names": class_names(cfg),
        "input": {
            "name": contract.INPUT,
            "shape": ["height", "width", 3],
            "dtype": contract.INPUT_DTYPE,
            "format": "BGR",
            "range": [0, 255],
            "size_divisibility": 32 if arch.backbone == "FPN" else 0,
            "traced_size": list(traced_size),
        },
        "pixel_mean_bgr": list(cfg.MODEL.PIXEL_MEAN),
        "pixel_std_bgr": list(cfg.MODEL.PIXEL_STD),
        "outputs": contract.onnx_outputs(arch.mask),
        "class_ids": "0-based, background excluded (detectron2)",
        "pooler": {
            "box": _pooler(box_head),
            **({"mask": _pooler(mask_head)} if arch.mask else {}),
        },
        "mask_resolution": contract.mask_resolution(arch.backbone, mask_head.POOLER_RESOLUTION) if arch.mask else None,
        "test": {
            "score_thresh": cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
            "nms_thresh": cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST,
            "detections_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
            "rpn_pre_nms_topk": cfg.MODEL.RPN.PRE_NMS_TOPK_TEST,
            "rpn_post_nms_topk": cfg.MODEL.RPN.POST_NMS_TOPK_TEST,
            "rpn_nms_thresh": cfg.MODEL.RPN.NMS_THRESH,
        },
        # detectron2's test-time ResizeShortestEdge, for evaluating on real images (verify --evaluate).
        "resize": {"min_size_test": cfg.INPUT.MIN_SIZE_TEST, "max_size_test": cfg.INPUT.MAX_SIZE_TEST},
        "onnx_opset": OPSET,
    }


def class_names(cfg):
    """The names of the config's first test dataset when detectron2 knows them for this class count, else None."""
    from detectron2.data import MetadataCatalog

    names = MetadataCatalog.get(cfg.DATASETS.TEST[0]).get("thing_classes") if cfg.DATASETS.TEST else None
    return list(names) if names and len(names) == cfg.MODEL.ROI_HEADS.NUM_CLASSES else None


def _pooler(head):
    return {
        "type": head.POOLER_TYPE,
        "resolution": head.POOLER_RESOLUTION,
        "sampling_ratio": head.POOLER_SAMPLING_RATIO,
        "aligned": head.POOLER_TYPE == "ROIAlignV2",
    }
