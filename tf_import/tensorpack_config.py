"""What tensorpack's examples/FasterRCNN needs beside model.npz to compute what detectron2 computes: its config flags
(flags.txt) and tensorpack_config.py, a small module that applies them together with the class names (the class
count reaches tensorpack only through a registered dataset's `class_names`: finalize_configs overwrites
DATA.NUM_CATEGORY from them). Found by running tensorpack's own model on our npz (docs/tensorpack.md section 2).
Needs nothing but the model info.
"""

from core import D2TFError


class NotExpressible(D2TFError):
    """detectron2 computes something tensorpack's model cannot be configured to compute."""

# tensorpack's defaults (examples/FasterRCNN/config.py) of the keys printed only when the model differs from them.
_DEFAULTS = {"PREPROC.TEST_SHORT_EDGE_SIZE": 800, "PREPROC.MAX_SIZE": 1333, "TEST.RESULT_SCORE_THRESH": 0.05,
             "TEST.FRCNN_NMS_THRESH": 0.5, "RPN.TEST_PRE_NMS_TOPK": 6000, "RPN.TEST_POST_NMS_TOPK": 1000,
             "RPN.TEST_PER_LEVEL_NMS_TOPK": 1000, "TEST.RESULTS_PER_IM": 100}

# detectron2 drops proposals that are empty after clipping (w > 0 and h > 0 strictly); tensorpack filters only when
# RPN.MIN_SIZE > 0 (modeling/model_rpn.py), comparing in float32. 1e-50 passes Python's `> 0` and is 0.0 in
# float32, so the filter tensorpack then applies is exactly detectron2's.
_EMPTY_PROPOSALS_DROPPED = 1e-50


# The meta-architectures beyond R-CNN (GeneralizedRCNN), as check_expressible describes them.
_OTHER_META = {"RetinaNet": "RetinaNet, a one-stage detector", "ProposalNetwork": "an RPN alone, proposals out",
               "SemanticSegmentor": "a semantic FPN, per-pixel class logits out",
               "PanopticFPN": "Panoptic FPN, semantic logits out beside the instances"}


def check_expressible(info):
    """Raises NotExpressible with the reason if tensorpack's model cannot be configured to compute what detectron2
    does (the pb is still written; the npz is not)."""
    arch = info.architecture
    if arch.meta in _OTHER_META:
        raise NotExpressible(f"{_OTHER_META[arch.meta]} (MODEL.META_ARCHITECTURE={arch.meta}); tensorpack's "
                             "FasterRCNN is an R-CNN: an RPN, ROI heads, and boxes and masks out")
    if arch.keypoints:
        raise NotExpressible("a keypoint head (MODEL.KEYPOINT_ON); tensorpack's FasterRCNN has none")
    if arch.class_agnostic:
        raise NotExpressible("class-agnostic box regression and masks (MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG, "
                             "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK); tensorpack's model regresses boxes per class "
                             "outside its cascade and predicts a mask per class")
    # The zoo's SyncBN and GN models, said so; other norms are tuned keys (_TUNED says why each is refused).
    zoo_norms = not any(key.endswith(".NORM") for key in info.tuned)
    if arch.norm == "SyncBN" and zoo_norms:
        raise NotExpressible("BatchNorm in the FPN and the 4conv1fc box head (MODEL.FPN.NORM, MODEL.ROI_BOX_HEAD.NORM "
                             "= SyncBN); tensorpack's FPN.NORM is None or GN, and its conv heads normalise with GN "
                             "only")
    if arch.norm == "GN" and zoo_norms:
        raise NotExpressible("GroupNorm heads (MODEL.ROI_BOX_HEAD.NORM, MODEL.ROI_MASK_HEAD.NORM = GN) normalise "
                             "each conv, then apply ReLU; tensorpack's fastrcnn_4conv1fc_gn_head and "
                             "maskrcnn_up4conv_gn_head apply ReLU, then GroupNorm")
    if arch.groups != 1:
        raise NotExpressible(f"ResNeXt's grouped convolutions (MODEL.RESNETS.NUM_GROUPS={arch.groups}); "
                             "tensorpack's resnet_bottleneck has none")
    if arch.backbone == "DC5":
        raise NotExpressible("a dilated res5 whose one feature map feeds the RPN and conv-fc heads (DC5, "
                             "MODEL.RESNETS.RES5_DILATION=2); tensorpack's backbones are C4, which runs res5 on each "
                             "ROI, and FPN")
    if not arch.aligned:
        raise NotExpressible("ROIAlign without the half-pixel shift (POOLER_TYPE ROIAlign); tensorpack's roi_align "
                             "always shifts by half a pixel")
    _tuned_items(info)
    if not info.resize.min_size_test:
        raise NotExpressible("INPUT.MIN_SIZE_TEST=0 (detectron2 does not resize at test time); tensorpack's predict "
                        "always resizes (PREPROC.TEST_SHORT_EDGE_SIZE)")


def flags(info):
    """The tensorpack config items for this model, as `'KEY=VALUE'` strings (no spaces inside a value)."""
    check_expressible(info)
    arch = info.architecture
    items = [("MODE_MASK", arch.mask), ("MODE_FPN", arch.backbone == "FPN")]
    if arch.backbone == "FPN":
        items.append(("FPN.CASCADE", arch.cascade))
    if arch.depth != 50:
        items.append(("BACKBONE.RESNET_NUM_BLOCKS", RESNET_BLOCKS[arch.depth]))
    items += [
        ("BACKBONE.STRIDE_1X1", arch.stride_in_1x1),
        ("PREPROC.PIXEL_MEAN", _rgb(info, info.pixel_mean_bgr)),
        ("PREPROC.PIXEL_STD", _rgb(info, info.pixel_std_bgr)),
        ("RPN.MIN_SIZE", _EMPTY_PROPOSALS_DROPPED),
    ]
    test = info.test
    optional = {
        "PREPROC.TEST_SHORT_EDGE_SIZE": info.resize.min_size_test,
        "PREPROC.MAX_SIZE": info.resize.max_size_test,
        "TEST.RESULT_SCORE_THRESH": test.score_thresh,
        "TEST.FRCNN_NMS_THRESH": test.nms_thresh,
        "TEST.RESULTS_PER_IM": test.detections_per_image,
    }
    if arch.backbone == "FPN":  # one count per level before NMS and overall after it (export checked PRE == POST)
        optional["RPN.TEST_PER_LEVEL_NMS_TOPK"] = test.rpn_post_nms_topk
    else:
        optional["RPN.TEST_PRE_NMS_TOPK"] = test.rpn_pre_nms_topk
        optional["RPN.TEST_POST_NMS_TOPK"] = test.rpn_post_nms_topk
    items += [(key, value) for key, value in optional.items() if value != _DEFAULTS[key]]
    items += _tuned_items(info)
    return [f"{key}={_format(value)}" for key, value in items]


# Blocks per ResNet stage of the bottleneck depths tensorpack builds (BACKBONE.RESNET_NUM_BLOCKS); its default is 50's.
RESNET_BLOCKS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


def _tuned_items(info):
    """The tensorpack config items of the keys the model tuned away from its reference zoo config (info.tuned), or
    NotExpressible naming the first key tensorpack's model has no setting for, and why."""
    items = []
    for key, value in info.tuned.items():
        rule = _TUNED.get(key, "d2tf maps no tensorpack flag to it")
        if isinstance(rule, str):
            raise NotExpressible(f"{key}={_format(value)}: {rule}")
        items += rule(value, info)
    return items


def _anchor_sizes(sizes, info):
    """detectron2 gives a list of sizes per feature map: C4 has one map, tensorpack's FPN one size per level."""
    arch = info.architecture
    if arch.backbone == "FPN" and any(len(level) != 1 for level in sizes):
        raise NotExpressible(f"MODEL.ANCHOR_GENERATOR.SIZES={_format(sizes)}: several anchor sizes on one FPN level; "
                             "tensorpack's FPN has one per level (RPN.ANCHOR_SIZES)")
    return [("RPN.ANCHOR_SIZES", tuple(level[0] for level in sizes) if arch.backbone == "FPN" else tuple(sizes[0]))]


def _anchor_ratios(ratios, info):
    if any(level != ratios[0] for level in ratios):
        raise NotExpressible(f"MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS={_format(ratios)}: other aspect ratios on "
                             "other levels; tensorpack's are the same on every level (RPN.ANCHOR_RATIOS)")
    return [("RPN.ANCHOR_RATIOS", tuple(ratios[0]))]


def _depth(depth, info):
    if depth not in RESNET_BLOCKS:
        raise NotExpressible(f"MODEL.RESNETS.DEPTH={depth}: detectron2 builds it of BasicBlocks; tensorpack's "
                             f"ResNets are bottleneck ones ({', '.join(map(str, RESNET_BLOCKS))})")
    return []  # flags() gives its BACKBONE.RESNET_NUM_BLOCKS


# tensorpack's FPN box heads without norm, by (NUM_CONV, NUM_FC): detectron2's FastRCNNConvFCHead computes the same
# (3x3 convs then fcs, each with ReLU, the fc input flattened from NCHW).
_BOX_HEADS = {(0, 2): "fastrcnn_2fc_head", (4, 1): "fastrcnn_4conv1fc_head"}
_BOX_HEAD_KEYS = ("MODEL.ROI_BOX_HEAD.NUM_CONV", "MODEL.ROI_BOX_HEAD.NUM_FC")


def _box_head(key):
    """The rule of one of the box head's counts: FPN.FRCNN_HEAD_FUNC of an FPN model whose counts are tuned, given
    by the first of the two keys tuned (C4's box head is res5, which never reads them)."""
    return lambda value, info: _box_head_func(info) if key == next(k for k in _BOX_HEAD_KEYS if k in info.tuned) \
        else []


def _box_head_func(info):
    counts = tuple(info.tuned.get(key, default) for key, default in zip(_BOX_HEAD_KEYS, (0, 2)))
    if info.architecture.backbone != "FPN":
        return []
    if counts not in _BOX_HEADS:
        raise NotExpressible(f"a box head of {counts[0]} convs and {counts[1]} fcs (MODEL.ROI_BOX_HEAD.NUM_CONV, "
                             f"NUM_FC); tensorpack's FPN box heads are {', '.join(map(str, _BOX_HEADS))} of them")
    return [("FPN.FRCNN_HEAD_FUNC", _BOX_HEADS[counts])]


def _tensorpacks_own(key, own, reason):
    """The rule of a key whose value `own` is what tensorpack's model computes (no flag), any other refused with
    `reason`."""
    def rule(value, info):
        if value != own:
            raise NotExpressible(f"{key}={_format(value)}: {reason}")
        return []
    return rule


def _cascade_weights(weights, info):
    """detectron2's cascade has one stage per weight tuple; tensorpack's three (its CascadeRCNNHead asserts so)."""
    if len(weights) != 3:
        raise NotExpressible(f"MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS={_format(weights)}: a cascade of "
                             f"{len(weights)} stages; tensorpack's has 3")
    return [("CASCADE.BBOX_REG_WEIGHTS", [list(w) for w in weights])]


# How each key export/supported.py lets a model tune reaches tensorpack's config: {key: (value, model info) ->
# [(flag, value)]}, or the reason tensorpack's model cannot compute another value (its config fixes it).
_TUNED = {
    "MODEL.ANCHOR_GENERATOR.SIZES": _anchor_sizes,
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": _anchor_ratios,
    "MODEL.ANCHOR_GENERATOR.OFFSET": "tensorpack centres anchors on multiples of the stride (offset 0)",
    "MODEL.RPN.NMS_THRESH": lambda value, info: [("RPN.PROPOSAL_NMS_THRESH", value)],
    "MODEL.RPN.BBOX_REG_WEIGHTS": "tensorpack decodes the RPN's deltas unweighted (1, 1, 1, 1)",
    # A cascade reads each stage's weights from ROI_BOX_CASCADE_HEAD, never these.
    "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS": lambda value, info: [] if info.architecture.cascade else [
        ("FRCNN.BBOX_REG_WEIGHTS", value)],
    # C4's box head is res5, which reads neither width; FPN's conv width only where it has convs.
    "MODEL.ROI_BOX_HEAD.FC_DIM": lambda value, info: [("FPN.FRCNN_FC_HEAD_DIM", value)]
    if info.architecture.backbone == "FPN" else [],
    "MODEL.ROI_BOX_HEAD.CONV_DIM": lambda value, info: [("FPN.FRCNN_CONV_HEAD_DIM", value)]
    if info.architecture.backbone == "FPN" and info.tuned.get("MODEL.ROI_BOX_HEAD.NUM_CONV") else [],
    **{key: _box_head(key) for key in _BOX_HEAD_KEYS},
    "MODEL.ROI_MASK_HEAD.CONV_DIM": lambda value, info: [("MRCNN.HEAD_DIM", value)],
    "MODEL.ROI_MASK_HEAD.NUM_CONV": "tensorpack's mask head has 4 convs (FPN) or none (C4)",
    "MODEL.FPN.OUT_CHANNELS": lambda value, info: [("FPN.NUM_CHANNEL", value)],
    "MODEL.RESNETS.DEPTH": _depth,
    "MODEL.RESNETS.RES2_OUT_CHANNELS": "tensorpack's bottleneck res2 has 256 channels",
    "MODEL.RESNETS.NUM_GROUPS": "tensorpack's resnet_bottleneck has no grouped convolutions",
    "MODEL.RESNETS.WIDTH_PER_GROUP": "tensorpack's bottlenecks are ResNet's (64 channels wide in res2)",
    "MODEL.FPN.FUSE_TYPE": "tensorpack's FPN sums each level with the upsampled one above",
    **{f"MODEL.{head}.POOLER_RESOLUTION": "tensorpack pools 7x7 for boxes and 14x14 for masks"
       for head in ("ROI_BOX_HEAD", "ROI_MASK_HEAD")},
    **{key: _tensorpacks_own(key, 2, "tensorpack's roi_align samples 2x2 points per bin")
       for key in ("MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO", "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO")},
    **{key: _tensorpacks_own(key, "ROIAlignV2", "tensorpack's roi_align always shifts by half a pixel (ROIAlignV2)")
       for key in ("MODEL.ROI_BOX_HEAD.POOLER_TYPE", "MODEL.ROI_MASK_HEAD.POOLER_TYPE")},
    "MODEL.RESNETS.NORM": "d2tf writes tensorpack's FreezeBN ResNet from FrozenBN weights only",
    "MODEL.FPN.NORM": "d2tf writes tensorpack's FPN without norm only (FPN.NORM None)",
    **{f"MODEL.{head}.NORM": "tensorpack's normalised heads apply ReLU, then GroupNorm; detectron2's normalise, "
       "then apply ReLU" for head in ("ROI_BOX_HEAD", "ROI_MASK_HEAD")},
    "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG": "tensorpack regresses boxes per class outside its cascade",
    "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK": "tensorpack predicts a mask per class",
    "MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS": _cascade_weights,
    **{key: "tensorpack's FPN takes res2-res5 and its heads read P2-P6 (FPN.ANCHOR_STRIDES 4-64)" for key in (
        "MODEL.RESNETS.OUT_FEATURES", "MODEL.FPN.IN_FEATURES", "MODEL.RPN.IN_FEATURES", "MODEL.ROI_HEADS.IN_FEATURES")},
    "MODEL.RPN.CONV_DIMS": "tensorpack's RPN head has one 3x3 conv as wide as its input",
    "MODEL.PROPOSAL_GENERATOR.MIN_SIZE": "d2tf sets tensorpack's RPN.MIN_SIZE to drop empty proposals only, as "
                                         "detectron2 does at MIN_SIZE 0",
    "MODEL.RESNETS.STEM_OUT_CHANNELS": "tensorpack's stem has 64 channels",
    "MODEL.RESNETS.DEFORM_ON_PER_STAGE": "tensorpack's ResNet has no deformable convolution",
    # Never reached: check_expressible refuses keypoint heads, semantic heads and RetinaNet first.
    **{f"MODEL.ROI_KEYPOINT_HEAD.{key}": "tensorpack's FasterRCNN has no keypoint head"
       for key in ("CONV_DIMS", "POOLER_RESOLUTION", "POOLER_SAMPLING_RATIO", "POOLER_TYPE")},
    **{f"MODEL.SEM_SEG_HEAD.{key}": "tensorpack's FasterRCNN has no semantic head"
       for key in ("IN_FEATURES", "CONVS_DIM", "COMMON_STRIDE", "NORM")},
    **{f"MODEL.RETINANET.{key}": "tensorpack's FasterRCNN has no RetinaNet"
       for key in ("IN_FEATURES", "NUM_CONVS", "NORM", "BBOX_REG_WEIGHTS")},
}


def _rgb(info, statistic):
    """A pixel statistic of the model (in its INPUT.FORMAT's channel order) in RGB order, as tensorpack's PREPROC
    takes it: tensorpack reverses it to meet its BGR images (an RGB model's npz has its first conv's input channels
    reversed to match, tensorpack_checkpoint.py)."""
    return statistic[::-1] if info.input.format == "BGR" else statistic


def _format(value):
    """A flag's value as tensorpack's update_args evaluates it. Anchor sizes and ratios are tuples: tensorpack's
    anchor functions are memoized on them, so they must hash."""
    if isinstance(value, tuple):
        return "(" + ",".join(_format(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ",".join(_format(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(float(value))
    return str(value)


def flags_line(info):
    return " ".join(f"'{item}'" for item in flags(info))


def class_names(info):
    """tensorpack's K+1 class names, background first: detectron2's dataset names when the config's test dataset
    has them, else class1..classK."""
    names = info.class_names or [f"class{i + 1}" for i in range(info.num_classes)]
    return ["BG", *names]


def module_source(info):
    """The text of tensorpack_config.py for this model."""
    return _MODULE.format(source=info.source.config, version=info.d2tf_version,
                          flags=_list(flags(info)), class_names=_list(class_names(info)),
                          max_size=info.resize.max_size_test)


def _list(items, per_line=6):
    rows = [", ".join(repr(i) for i in items[k:k + per_line]) for k in range(0, len(items), per_line)]
    return "[\n    " + ",\n    ".join(rows) + ",\n]"


_MODULE = '''"""tensorpack settings for model.npz beside this file (d2tf {version}, from {source}).

Use with tensorpack's examples/FasterRCNN on TF 2.x, with that directory and this file's directory on sys.path, and
TF_USE_LEGACY_KERAS=1 set before TensorFlow is imported (on a CPU also TF_ENABLE_ONEDNN_OPTS=1: tensorpack's NCHW
layers run there only through oneDNN):

    import tensorpack_config
    predictor = tensorpack_config.predictor()         # tensorpack's OfflinePredictor on model.npz
    boxes, scores, labels, *masks = predictor(image)  # image: HxWx3 BGR float32, already resized
    from eval import predict_image                    # or tensorpack's own resize and postprocessing:
    results = predict_image(original_bgr_image, predictor)

Call once per process (finalize_configs freezes the config). Known differences from detectron2: C4 models only
compute detectron2's result on images whose sides are multiples of 16 (tensorpack's backbone drops an odd last
row/column at each stride 2); tensorpack clamps box deltas at log(MAX_SIZE/16) where detectron2 uses log(1000/16).
"""

import os

FLAGS = {flags}

# K+1 names, background first: finalize_configs takes the class count from the registered dataset's names.
CLASS_NAMES = {class_names}

# detectron2's INPUT.MAX_SIZE_TEST. In FPN mode finalize_configs rounds PREPROC.MAX_SIZE up to a multiple of 32,
# which the anchors are built for; predictor() restores this value once the graph is built, for predict_image's
# resize.
MAX_SIZE = {max_size}

NPZ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.npz")


def configure():
    """Applies FLAGS, registers CLASS_NAMES for the datasets the config names, finalizes; returns the config."""
    import tensorflow as tf
    from config import config as cfg, finalize_configs
    from dataset import DatasetRegistry

    if not hasattr(tf, "variable_scope"):  # modeling/model_cascade.py uses TF 1's name
        tf.variable_scope = tf.compat.v1.variable_scope
    cfg.update_args(FLAGS)
    for name in [*cfg.DATA.TRAIN, *cfg.DATA.VAL]:
        DatasetRegistry.register_metadata(name, "class_names", CLASS_NAMES)
    finalize_configs(is_training=False)
    return cfg


def predictor(npz=NPZ, frozen=True):
    """tensorpack's model with these settings, restored from `npz` by SmartInit: a callable taking one HxWx3 BGR
    float image and returning [boxes, scores, labels, masks (mask models)], as tensorpack's predict_image expects.

    frozen=False gives tensorpack's OfflinePredictor as it is. On a CPU where TF does not enable oneDNN by default,
    oneDNN runs convolutions whose filters are variables, or which grappler's remapper fused with their batch norm,
    with its reference kernel: about 100x slower (minutes an image). frozen=True (default) runs the same graph with
    the restored variables as constants and those rewrites off, which takes oneDNN's fast kernels (measured on a
    256x320 image: first run 7 s with the rewrites below off, 13 s with only the remapper off; then 1.4 s).
    """
    from modeling.generalized_rcnn import ResNetC4Model, ResNetFPNModel
    from tensorpack.predict import OfflinePredictor, PredictConfig
    from tensorpack.tfutils.sessinit import SmartInit

    cfg = configure()
    model = ResNetFPNModel() if cfg.MODE_FPN else ResNetC4Model()
    inputs, outputs = model.get_inference_tensor_names()
    predict = OfflinePredictor(PredictConfig(model=model, session_init=SmartInit(npz), input_names=inputs,
                                             output_names=outputs))
    cfg.freeze(False)
    cfg.PREPROC.MAX_SIZE = MAX_SIZE
    cfg.freeze()
    return _frozen(predict.sess, inputs[0], outputs) if frozen else predict


def _frozen(sess, input_name, output_names):
    import tensorflow as tf

    graph_def = tf.compat.v1.graph_util.convert_variables_to_constants(
        sess, sess.graph.as_graph_def(), output_names)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    config = tf.compat.v1.ConfigProto()
    for rewrite in ("remapping", "constant_folding", "arithmetic_optimization", "layout_optimizer",
                    "dependency_optimization", "loop_optimization", "function_optimization", "shape_optimization"):
        setattr(config.graph_options.rewrite_options, rewrite, config.graph_options.rewrite_options.OFF)
    session = tf.compat.v1.Session(graph=graph, config=config)
    fetches = [name + ":0" for name in output_names]
    return lambda image: session.run(fetches, {{input_name + ":0": image}})
'''
