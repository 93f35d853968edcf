"""Which detectron2 configs d2tf converts: the 12 tensorpack architectures and those of core.zoo.PB_ONLY_ARCHITECTURES
(R-CNN variants, RetinaNet, RPN, semantic and Panoptic FPN), nothing that differs from them silently.

A config is matched to its reference (the tensorpack architecture's config with the same backbone, depth, heads),
then every graph-changing key is compared with that reference. Keys that only matter for training are skipped; the few
that the outputs can carry (pixel statistics, class count, test thresholds and counts, STRIDE_IN_1X1) may differ.
"""

import dataclasses

from core import D2TFError, zoo

# Leaf names that only affect training, in any subtree.
_TRAINING_ONLY = {
    "FREEZE_AT", "BOUNDARY_THRESH", "IOU_THRESHOLDS", "IOU_LABELS", "BATCH_SIZE_PER_IMAGE", "POSITIVE_FRACTION",
    "BBOX_REG_LOSS_TYPE", "BBOX_REG_LOSS_WEIGHT", "SMOOTH_L1_BETA", "LOSS_WEIGHT", "PROPOSAL_APPEND_GT",
    "TRAIN_ON_PRED_BOXES", "IOUS", "PRE_NMS_TOPK_TRAIN", "POST_NMS_TOPK_TRAIN", "IGNORE_VALUE",
    "INSTANCE_LOSS_WEIGHT", "MIN_KEYPOINTS_PER_IMAGE", "NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS",
    "PRIOR_PROB", "FOCAL_LOSS_GAMMA", "FOCAL_LOSS_ALPHA", "SMOOTH_L1_LOSS_BETA",  # RetinaNet's init and loss
}
# Keys whose value is carried into the model info and the tensorpack flags rather than fixed by the reference.
_CARRIED = {
    "MODEL.DEVICE", "MODEL.WEIGHTS", "MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD", "MODEL.RESNETS.STRIDE_IN_1X1",
    "MODEL.ROI_HEADS.NUM_CLASSES", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "MODEL.ROI_HEADS.NMS_THRESH_TEST",
    "MODEL.RPN.PRE_NMS_TOPK_TEST", "MODEL.RPN.POST_NMS_TOPK_TEST", "MODEL.RETINANET.NUM_CLASSES",
    "MODEL.RETINANET.SCORE_THRESH_TEST", "MODEL.RETINANET.NMS_THRESH_TEST", "MODEL.RETINANET.TOPK_CANDIDATES_TEST",
    "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS",
}
# Keys a trained model may have tuned away from its reference config: the traced graph takes them from detectron2's
# own modules, the checkpoint's shapes must agree with them when it loads, and verify compares the result with
# detectron2. The model info records those that differ (`tuned`); tensorpack's flags carry those its config
# expresses (tf_import/tensorpack_config.py, _TUNED).
_TUNABLE = {
    "MODEL.ANCHOR_GENERATOR.SIZES", "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", "MODEL.ANCHOR_GENERATOR.OFFSET",
    "MODEL.RPN.NMS_THRESH", "MODEL.RPN.BBOX_REG_WEIGHTS", "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS",
    *(f"MODEL.{head}.{key}" for head in ("ROI_BOX_HEAD", "ROI_MASK_HEAD")
      for key in ("NUM_CONV", "CONV_DIM", "POOLER_RESOLUTION", "POOLER_SAMPLING_RATIO")),
    "MODEL.ROI_BOX_HEAD.NUM_FC", "MODEL.ROI_BOX_HEAD.FC_DIM", "MODEL.FPN.OUT_CHANNELS",
    "MODEL.RESNETS.DEPTH", "MODEL.RESNETS.RES2_OUT_CHANNELS", "MODEL.RESNETS.NUM_GROUPS",
    "MODEL.RESNETS.WIDTH_PER_GROUP", "MODEL.FPN.FUSE_TYPE",
    # Variants that pick the reference config where the zoo has one of that head (Architecture._reference), tuned on
    # any other: norms, class-agnostic heads, the pooler, a cascade's stage count (one weight tuple per stage).
    "MODEL.RESNETS.NORM", "MODEL.FPN.NORM", "MODEL.ROI_BOX_HEAD.NORM", "MODEL.ROI_MASK_HEAD.NORM",
    "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG", "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK",
    "MODEL.ROI_BOX_HEAD.POOLER_TYPE", "MODEL.ROI_MASK_HEAD.POOLER_TYPE", "MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS",
    # Which feature maps the FPN takes and the heads read (the anchor sizes then name one list per map).
    "MODEL.RESNETS.OUT_FEATURES", "MODEL.FPN.IN_FEATURES", "MODEL.RPN.IN_FEATURES", "MODEL.ROI_HEADS.IN_FEATURES",
    "MODEL.RPN.CONV_DIMS", "MODEL.PROPOSAL_GENERATOR.MIN_SIZE", "MODEL.RESNETS.STEM_OUT_CHANNELS",
    # Deformable convolution in the bottlenecks of these stages (export/deform_conv.py; _deformable_problems).
    "MODEL.RESNETS.DEFORM_ON_PER_STAGE",
    *(f"MODEL.ROI_KEYPOINT_HEAD.{key}" for key in ("CONV_DIMS", "POOLER_RESOLUTION", "POOLER_SAMPLING_RATIO",
                                                    "POOLER_TYPE")),
    *(f"MODEL.SEM_SEG_HEAD.{key}" for key in ("IN_FEATURES", "CONVS_DIM", "COMMON_STRIDE", "NORM")),
    *(f"MODEL.RETINANET.{key}" for key in ("IN_FEATURES", "NUM_CONVS", "NORM", "BBOX_REG_WEIGHTS")),
}
_DEPTHS = {18, 34, 50, 101, 152}  # detectron2's ResNets: BasicBlock below 50, bottleneck from 50
_INPUT_FORMATS = {"BGR", "RGB"}

# Subtrees that do not exist in the graph, by meta-architecture (the mask, keypoint and cascade heads: by the
# Architecture, _graph_keys). Panoptic FPN's PANOPTIC_FPN.COMBINE is its postprocessing, which the graph leaves to the
# user (its sem_seg and instances are outputs).
_RCNN = ("MODEL.ROI_HEADS", "MODEL.ROI_BOX_HEAD", "MODEL.ROI_BOX_CASCADE_HEAD", "MODEL.ROI_MASK_HEAD")
_UNUSED_SUBTREES = {
    "GeneralizedRCNN": ("MODEL.SEM_SEG_HEAD", "MODEL.PANOPTIC_FPN", "MODEL.RETINANET"),
    "RetinaNet": ("MODEL.SEM_SEG_HEAD", "MODEL.PANOPTIC_FPN", "MODEL.PROPOSAL_GENERATOR", "MODEL.RPN", *_RCNN),
    "ProposalNetwork": ("MODEL.SEM_SEG_HEAD", "MODEL.PANOPTIC_FPN", "MODEL.RETINANET", *_RCNN),
    "SemanticSegmentor": ("MODEL.PANOPTIC_FPN", "MODEL.RETINANET", "MODEL.PROPOSAL_GENERATOR", "MODEL.RPN", *_RCNN),
    "PanopticFPN": ("MODEL.PANOPTIC_FPN", "MODEL.RETINANET"),
}

# Backbone builders by meta-architecture: (config name, Architecture.backbone). RetinaNet's FPN has P3-P7, P6 and P7
# made from res5.
_FPN = {"build_resnet_fpn_backbone": "FPN"}
_RESNET = {"build_resnet_backbone": "C4", **_FPN}
_BACKBONES = {
    "GeneralizedRCNN": _RESNET,
    "RetinaNet": {"build_retinanet_resnet_fpn_backbone": "FPN"},
    "ProposalNetwork": _RESNET,
    "SemanticSegmentor": _FPN,
    "PanopticFPN": _FPN,
}
# The name of each meta-architecture's model, after its backbone's (R-CNN's says which heads).
_KINDS = {"RetinaNet": "RetinaNet", "ProposalNetwork": "RPN", "SemanticSegmentor": "semantic FPN",
          "PanopticFPN": "Panoptic FPN"}
_ROI_HEADS = {"C4": {"Res5ROIHeads"}, "DC5": {"StandardROIHeads"}, "FPN": {"StandardROIHeads", "CascadeROIHeads"}}
# detectron2's norms (layers.get_norm; "" is none) that trace to ONNX: every BatchNorm is one in eval mode.
_NORMS = {"", "FrozenBN", "BN", "SyncBN", "naiveSyncBN", "nnSyncBN", "GN"}
_NORM_KEYS = ("MODEL.RESNETS.NORM", "MODEL.FPN.NORM", "MODEL.ROI_BOX_HEAD.NORM", "MODEL.ROI_MASK_HEAD.NORM")
_POOLERS = {"ROIAlignV2", "ROIAlign"}
_POOLER_KEYS = ("POOLER_RESOLUTION", "POOLER_SAMPLING_RATIO", "POOLER_TYPE")
# detectron2's other poolers (modeling/poolers.py), with what keeps each out.
_REFUSED_POOLERS = {
    "ROIPool": "max pooling per bin, which traces to ONNX MaxRoiPool: d2tf translates no such op to TensorFlow",
    "ROIAlignRotated": "rotated boxes (detectron2's RROIHeads), which d2tf's outputs and runtimes do not carry",
}


@dataclasses.dataclass(frozen=True)
class Architecture:
    backbone: str  # "C4", "DC5" (C4's ResNet with a dilated res5, the heads on res5) or "FPN"
    depth: int  # one of _DEPTHS
    mask: bool
    cascade: bool
    class_agnostic: bool = False  # one box regression and one mask for all classes (the cascade's boxes always are)
    norm: str = "FrozenBN"  # the ResNet's; the zoo's SyncBN and GN models also normalise the FPN and the heads
    aligned: bool = True  # ROIAlignV2; False: ROIAlign without the half-pixel shift (Detectron1's)
    groups: int = 1  # ResNeXt's grouped 3x3 convolutions (NUM_GROUPS), each WIDTH_PER_GROUP channels wide in res2
    width_per_group: int = 64
    meta: str = "GeneralizedRCNN"  # MODEL.META_ARCHITECTURE, one of _BACKBONES
    keypoints: bool = False  # MODEL.KEYPOINT_ON: R-CNN's keypoint head

    @property
    def name(self):
        head = "Keypoint" if self.keypoints else "Mask" if self.mask else "Faster"
        kind = ("Cascade " if self.cascade else "") + _KINDS.get(self.meta, head + " R-CNN")
        resnet = f"R{self.depth}" if self.groups == 1 else f"X{self.depth}-{self.groups}x{self.width_per_group}d"
        variants = [self.norm] if self.norm != "FrozenBN" else []
        variants += ["class-agnostic"] if self.class_agnostic else []
        variants += ["unaligned ROIAlign"] if not self.aligned else []
        return f"{resnet}-{self.backbone} {kind}" + "".join(", " + v for v in variants)

    @property
    def reference_config(self):
        """The zoo config this architecture's config is compared with; one of R50's where the zoo has none of this
        depth (MODEL.RESNETS.DEPTH is tunable); None where it has neither."""
        return self._reference(self.depth) or self._reference(50)

    def _reference(self, depth):
        # Each variant is one zoo model (R50-FPN, or X101-FPN for ResNeXt); the key comparison refuses any other
        # combination but the _TUNABLE keys.
        if self.meta == "PanopticFPN" and self.cascade:
            return zoo.CASCADE_PANOPTIC
        if self.meta != "GeneralizedRCNN":
            return zoo.OTHER_META.get((self.meta, self.backbone, depth))
        if self.keypoints:
            return zoo.KEYPOINTS.get((depth, self.groups, self.aligned)) or zoo.KEYPOINTS.get((depth, 1, True))
        if self.backbone == "DC5":
            return zoo.DILATED.get((depth, self.mask))
        variant = self._variant() if self.backbone == "FPN" and not self.cascade else None
        if variant:
            return variant
        head = ("cascade_" if self.cascade else "") + ("mask" if self.mask else "faster")
        name = f"{head}_rcnn_R_{depth}_{self.backbone}_3x"
        return next((c for c in zoo.TENSORPACK_ARCHITECTURES if zoo.short_name(c) == name), None)

    def _variant(self):
        """The zoo's R50-FPN (X101-FPN) R-CNN variant with this head, or None: the keys that make it one are tuned
        on any other R-CNN."""
        if self.class_agnostic and self.mask:
            return zoo.CLASS_AGNOSTIC
        if self.norm in zoo.NORMALISED and self.mask:
            return zoo.NORMALISED[self.norm]
        if not self.aligned:
            return zoo.UNALIGNED[self.mask]
        if self.groups != 1:
            return zoo.RESNEXT[self.mask]
        return None


def check_supported(cfg):
    """(the Architecture of cfg, {tuned key: value} of the _TUNABLE keys that differ from its reference config), or
    raises one D2TFError naming every unsupported key and value."""
    problems = []

    def require(key, allowed):
        value = _get(cfg, key)
        if value not in allowed:
            reason = _foreign(key, value) or "supported: " + ", ".join(map(repr, sorted(allowed)))
            problems.append(f"{key}={value!r} ({reason})")
        return value

    reason = _refused_family(cfg)
    if reason:
        raise _unsupported(cfg, [reason])
    meta = require("MODEL.META_ARCHITECTURE", set(_BACKBONES))
    if problems:
        raise _unsupported(cfg, problems)
    backbone = _BACKBONES[meta].get(require("MODEL.BACKBONE.NAME", set(_BACKBONES[meta])))
    if backbone == "C4" and cfg.MODEL.RESNETS.RES5_DILATION == 2:
        backbone = "DC5"
    depth = require("MODEL.RESNETS.DEPTH", _DEPTHS)
    require("INPUT.FORMAT", _INPUT_FORMATS)
    norm = require("MODEL.RESNETS.NORM", _NORMS - {""})
    for key in _NORM_KEYS[1:]:
        require(key, _NORMS)
    if meta == "RetinaNet":  # detectron2 0.6's RetinaNetHead names its norm by building it for one channel
        require("MODEL.RETINANET.NORM", _NORMS - {"GN"})
    if meta in ("SemanticSegmentor", "PanopticFPN"):
        require("MODEL.SEM_SEG_HEAD.NORM", _NORMS)
    if meta in ("RetinaNet", "ProposalNetwork", "SemanticSegmentor"):
        arch = Architecture(backbone, depth, False, False, norm=norm, meta=meta)
    else:
        heads = require("MODEL.ROI_HEADS.NAME", _ROI_HEADS.get(backbone, set().union(*_ROI_HEADS.values())))
        pooler = _pooler(cfg, "ROI_BOX_HEAD", problems)
        if cfg.MODEL.MASK_ON and backbone != "C4":
            _pooler(cfg, "ROI_MASK_HEAD", problems)
        if cfg.MODEL.KEYPOINT_ON:
            _pooler(cfg, "ROI_KEYPOINT_HEAD", problems)
        cascade = heads == "CascadeROIHeads"
        agnostic = cfg.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG or cfg.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK
        resnets = cfg.MODEL.RESNETS
        arch = Architecture(backbone, depth, bool(cfg.MODEL.MASK_ON), cascade, bool(agnostic) and not cascade, norm,
                            pooler == "ROIAlignV2", resnets.NUM_GROUPS, resnets.WIDTH_PER_GROUP, meta,
                            bool(cfg.MODEL.KEYPOINT_ON))
    if depth < 50:
        problems += _basic_block_problems(cfg.MODEL.RESNETS, depth)
    elif any(cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE):
        problems += _deformable_problems(cfg.MODEL.RESNETS)
    if arch.meta != "GeneralizedRCNN" and arch.reference_config is None:
        known = sorted(f"R{d}-{b}" for m, b, d in zoo.OTHER_META if m == arch.meta)
        problems.append(f"a {arch.backbone} ResNet (the zoo's {meta} models, whose configs d2tf compares with, "
                        f"are {', '.join(known)})")
    if arch.keypoints and arch.reference_config is None:
        known = ", ".join(zoo.short_name(c) for c in zoo.KEYPOINTS.values())
        problems.append(f"MODEL.KEYPOINT_ON=True with this backbone and pooler (the zoo's keypoint R-CNNs, which d2tf "
                        f"converts, are {known})")
    if problems:
        raise _unsupported(cfg, problems)

    reference = zoo.load_config(arch.reference_config)
    tuned = {}
    for key, value in _graph_keys(cfg, arch):
        expected = _get(reference, key)
        if _normalise(value) == _normalise(expected):
            continue
        if key in _TUNABLE:
            tuned[key] = _plain(value)
        else:
            reason = _foreign(key, value) or f"the {arch.name} d2tf converts has {expected!r}"
            problems.append(f"{key}={value!r} ({reason})")
    rpn = cfg.MODEL.RPN
    if arch.meta == "GeneralizedRCNN" and arch.backbone == "FPN" and rpn.PRE_NMS_TOPK_TEST != rpn.POST_NMS_TOPK_TEST:
        problems.append(f"MODEL.RPN.PRE_NMS_TOPK_TEST={rpn.PRE_NMS_TOPK_TEST} != MODEL.RPN.POST_NMS_TOPK_TEST="
                        f"{rpn.POST_NMS_TOPK_TEST} (tensorpack's FPN has one count for both, "
                        "RPN.TEST_PER_LEVEL_NMS_TOPK)")
    if problems:
        raise _unsupported(cfg, problems)
    return arch, tuned


# The config keys that name a registered module, by the detectron2.modeling registry that holds it.
_REGISTRIES = {"MODEL.META_ARCHITECTURE": "META_ARCH_REGISTRY", "MODEL.BACKBONE.NAME": "BACKBONE_REGISTRY",
               "MODEL.PROPOSAL_GENERATOR.NAME": "PROPOSAL_GENERATOR_REGISTRY",
               "MODEL.RPN.HEAD_NAME": "RPN_HEAD_REGISTRY",
               "MODEL.ANCHOR_GENERATOR.NAME": "ANCHOR_GENERATOR_REGISTRY", "MODEL.ROI_HEADS.NAME": "ROI_HEADS_REGISTRY",
               "MODEL.ROI_BOX_HEAD.NAME": "ROI_BOX_HEAD_REGISTRY", "MODEL.ROI_MASK_HEAD.NAME": "ROI_MASK_HEAD_REGISTRY",
               "MODEL.ROI_KEYPOINT_HEAD.NAME": "ROI_KEYPOINT_HEAD_REGISTRY",
               "MODEL.SEM_SEG_HEAD.NAME": "SEM_SEG_HEADS_REGISTRY"}


def _foreign(key, value):
    """Why a module name is refused when detectron2 registers no such module, else None."""
    import detectron2.modeling as modeling

    registry = _REGISTRIES.get(key)
    if registry is None or value in getattr(modeling, registry):
        return None
    return ("not a module of detectron2's own: one your code registers is not built here, and d2tf converts "
            "only what detectron2 builds")


def _basic_block_problems(resnets, depth):
    """What detectron2's ResNet of BasicBlocks (depth 18, 34) cannot be built with, one phrase each."""
    fixed = {"RES2_OUT_CHANNELS": 64, "NUM_GROUPS": 1, "RES5_DILATION": 1}
    problems = [f"MODEL.RESNETS.{key}={resnets[key]} (detectron2 builds R{depth}'s BasicBlocks with {value} only)"
                for key, value in fixed.items() if resnets[key] != value]
    if any(resnets.DEFORM_ON_PER_STAGE):
        problems.append(f"MODEL.RESNETS.DEFORM_ON_PER_STAGE={list(resnets.DEFORM_ON_PER_STAGE)} (detectron2 builds "
                        f"R{depth}'s BasicBlocks without deformable convolution)")
    return problems


def _deformable_problems(resnets):
    """What keeps a ResNet's deformable convolution out, one phrase each: detectron2 computes these kinds on GPUs
    only, and verify compares the conversion with detectron2 on the CPU."""
    kinds = {"DEFORM_MODULATED": (False, "modulated deformable convolution"),
             "DEFORM_NUM_GROUPS": (1, "deformable convolution with more than one offset group")}
    return [f"MODEL.RESNETS.{key}={resnets[key]!r} ({kind}: detectron2 computes it on GPUs only, so verify could "
            "not compare the conversion with detectron2)" for key, (value, kind) in kinds.items()
            if resnets[key] != value]


def _pooler(cfg, head, problems):
    """The POOLER_TYPE of cfg.MODEL.`head`, after adding to `problems` why it is refused if it is."""
    pooler = cfg.MODEL[head].POOLER_TYPE
    if pooler not in _POOLERS:
        reason = _REFUSED_POOLERS.get(pooler, f"supported: {', '.join(sorted(_POOLERS))}")
        problems.append(f"MODEL.{head}.POOLER_TYPE={pooler!r} ({reason})")
    return pooler


def _refused_family(cfg):
    """The reason a config of a family d2tf cannot convert is refused, or None: said once, where listing its keys
    would not tell the user why."""
    if cfg.MODEL.LOAD_PROPOSALS:
        return ("MODEL.LOAD_PROPOSALS=True: a Fast R-CNN that reads precomputed proposals beside each image, "
                "which a graph on the image alone cannot take")
    return None


def _unsupported(cfg, problems):
    return D2TFError("unsupported config, refusing to convert: " + "; ".join(problems))


def _graph_keys(cfg, arch):
    """(dotted key, value) of every leaf of cfg.MODEL that shapes the inference graph of `arch`."""
    skip = set(_UNUSED_SUBTREES[arch.meta])
    if not arch.mask:
        skip.add("MODEL.ROI_MASK_HEAD")
    if not arch.keypoints:
        skip.add("MODEL.ROI_KEYPOINT_HEAD")
    if not arch.cascade:
        skip.add("MODEL.ROI_BOX_CASCADE_HEAD")
    if arch.backbone != "FPN":
        skip.add("MODEL.FPN")
    if arch.backbone == "C4":  # Res5ROIHeads pools masks with the box head's pooler
        skip.update(f"MODEL.ROI_MASK_HEAD.{key}" for key in _POOLER_KEYS)
    if not any(cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE):  # the kind of deformable convolution, with none
        skip.update({"MODEL.RESNETS.DEFORM_MODULATED", "MODEL.RESNETS.DEFORM_NUM_GROUPS"})
    for key, value in _leaves(cfg.MODEL, "MODEL"):
        if key.split(".")[-1] in _TRAINING_ONLY or key in _CARRIED or key in skip \
                or any(key.startswith(s + ".") for s in skip):
            continue
        yield key, value


def _leaves(node, prefix):
    for key, value in node.items():
        if hasattr(value, "items"):
            yield from _leaves(value, f"{prefix}.{key}")
        else:
            yield f"{prefix}.{key}", value


def _get(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _plain(value):
    """A config value as JSON has it: lists, not tuples."""
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _normalise(value):
    """yaml gives lists where the defaults have tuples; compare contents only."""
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(v) for v in value)
    return value
