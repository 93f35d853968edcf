"""Resolving a `--config` argument (zoo name or yaml path) to its checked yaml file, which needs no PyTorch, and
to a detectron2 CfgNode (PyTorch side)."""

import importlib.util
import os

from core import D2TFError
from core.config_yaml import load_chain

# Model-zoo configs that have no yaml of their own: built from a zoo yaml plus overrides. The zoo ships only
# cascade_mask_rcnn_R_50_FPN; the seed converter also covers R101 and box-only cascades.
_CASCADE_BASE = "Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml"
DERIVED = {
    "d2tf/cascade_faster_rcnn_R_50_FPN_3x.yaml": (_CASCADE_BASE, ["MODEL.MASK_ON", False]),
    "d2tf/cascade_mask_rcnn_R_101_FPN_3x.yaml": (_CASCADE_BASE, ["MODEL.RESNETS.DEPTH", 101]),
    "d2tf/cascade_faster_rcnn_R_101_FPN_3x.yaml": (
        _CASCADE_BASE,
        ["MODEL.MASK_ON", False, "MODEL.RESNETS.DEPTH", 101],
    ),
}

# The 12 architectures tensorpack's FasterRCNN expresses (and its convert_d2 script renamed), by the config each
# is tested with.
TENSORPACK_ARCHITECTURES = [
    "COCO-Detection/faster_rcnn_R_50_C4_3x.yaml",
    "COCO-Detection/faster_rcnn_R_101_C4_3x.yaml",
    "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
    "COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_C4_3x.yaml",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml",
    "d2tf/cascade_faster_rcnn_R_50_FPN_3x.yaml",
    "d2tf/cascade_faster_rcnn_R_101_FPN_3x.yaml",
    "Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml",
    "d2tf/cascade_mask_rcnn_R_101_FPN_3x.yaml",
]

# Architectures beyond tensorpack's: d2tf delivers their pb, and no npz (tensorpack's model cannot express them).
CLASS_AGNOSTIC = "Misc/mask_rcnn_R_50_FPN_1x_cls_agnostic.yaml"
NORMALISED = {"SyncBN": "Misc/mask_rcnn_R_50_FPN_3x_syncbn.yaml", "GN": "Misc/mask_rcnn_R_50_FPN_3x_gn.yaml"}
UNALIGNED = {  # by MASK_ON
    True: "Detectron1-Comparisons/mask_rcnn_R_50_FPN_noaug_1x.yaml",
    False: "Detectron1-Comparisons/faster_rcnn_R_50_FPN_noaug_1x.yaml",
}
RESNEXT = {  # by MASK_ON
    True: "COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x.yaml",
    False: "COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml",
}
# by (depth, MASK_ON). R101-DC5 Faster R-CNN is R50's with its depth tuned: the suite converts R101's DC5 ResNet in
# R101-DC5 Mask R-CNN and the Faster R-CNN head in R50's.
DILATED = {
    (50, False): "COCO-Detection/faster_rcnn_R_50_DC5_3x.yaml",
    (50, True): "COCO-InstanceSegmentation/mask_rcnn_R_50_DC5_3x.yaml",
    (101, True): "COCO-InstanceSegmentation/mask_rcnn_R_101_DC5_3x.yaml",
}
# Deformable convolution in res3-res5 (R50-FPN Mask R-CNN with MODEL.RESNETS.DEFORM_ON_PER_STAGE tuned).
DEFORMABLE = "Misc/mask_rcnn_R_50_FPN_3x_dconv_c3-c5.yaml"
OTHER_META = {  # the meta-architectures other than R-CNN (GeneralizedRCNN), by (meta-architecture, backbone, depth)
    ("RetinaNet", "FPN", 50): "COCO-Detection/retinanet_R_50_FPN_3x.yaml",
    ("RetinaNet", "FPN", 101): "COCO-Detection/retinanet_R_101_FPN_3x.yaml",
    ("ProposalNetwork", "C4", 50): "COCO-Detection/rpn_R_50_C4_1x.yaml",
    ("ProposalNetwork", "FPN", 50): "COCO-Detection/rpn_R_50_FPN_1x.yaml",
    ("SemanticSegmentor", "FPN", 50): "Misc/semantic_R_50_FPN_1x.yaml",
    ("PanopticFPN", "FPN", 50): "COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml",
    ("PanopticFPN", "FPN", 101): "COCO-PanopticSegmentation/panoptic_fpn_R_101_3x.yaml",
}
RETINANET = {depth: OTHER_META["RetinaNet", "FPN", depth] for depth in (50, 101)}
# The zoo's one Panoptic FPN with cascade ROI heads (R101, GN, deformable res3-res5): the reference of any.
CASCADE_PANOPTIC = "Misc/panoptic_fpn_R_101_dconv_cascade_gn_3x.yaml"
KEYPOINTS = {  # keypoint R-CNN, by (depth, NUM_GROUPS, aligned ROIAlign)
    (50, 1, True): "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml",
    (101, 1, True): "COCO-Keypoints/keypoint_rcnn_R_101_FPN_3x.yaml",
    (101, 32, True): "COCO-Keypoints/keypoint_rcnn_X_101_32x8d_FPN_3x.yaml",
    (50, 1, False): "Detectron1-Comparisons/keypoint_rcnn_R_50_FPN_1x.yaml",
}
# A DC5 build peaks at about 9 GB (TensorFlow's first run copies the 400 MB box head many times) and the suite builds
# the next two architectures while one is tested: others between DC5 builds keep two from running together.
PB_ONLY_ARCHITECTURES = [CLASS_AGNOSTIC, DILATED[50, False], RETINANET[50], *NORMALISED.values(), DILATED[50, True],
                         *UNALIGNED.values(), DEFORMABLE, RETINANET[101], *RESNEXT.values(),
                         DILATED[101, True], OTHER_META["ProposalNetwork", "C4", 50],
                         OTHER_META["ProposalNetwork", "FPN", 50], OTHER_META["SemanticSegmentor", "FPN", 50],
                         OTHER_META["PanopticFPN", "FPN", 50], OTHER_META["PanopticFPN", "FPN", 101],
                         *KEYPOINTS.values()]
# LVIS models share their architecture's graph (the class count, threshold and detection count are carried values),
# but send every (proposal, class) pair of 1203 classes to NMS: one LVIS model is converted in the suite, standing
# for the LVIS models of its architecture.
LVIS = {  # by the architecture's reference config
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml": "LVISv1-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
}
# The suite's configs with an npz, which tensorpack's own model runs; and every architecture the suite converts, by
# the config it is tested with.
NPZ_CONFIGS = TENSORPACK_ARCHITECTURES + list(LVIS.values())
SUITE_ARCHITECTURES = TENSORPACK_ARCHITECTURES + PB_ONLY_ARCHITECTURES + list(LVIS.values())

DEFAULT_EXAMPLE = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"


def suite_config(config, reference):
    """The suite config that stands for zoo `config`, whose architecture is tested as `reference`: itself if the
    suite converts it, the LVIS one for an LVIS model of that architecture, else the reference."""
    if config in SUITE_ARCHITECTURES:
        return config
    if config.startswith("LVIS") and reference in LVIS:
        return LVIS[reference]
    return reference


def short_name(config):
    """`COCO-Detection/faster_rcnn_R_50_C4_3x.yaml` -> `faster_rcnn_R_50_C4_3x` (for file and test names); LVIS
    models keep their dataset, whose zoo files have COCO's names: `LVISv1_mask_rcnn_R_50_FPN_1x`."""
    name = os.path.splitext(os.path.basename(config))[0]
    dataset = os.path.basename(os.path.dirname(config)).split("-")[0]
    return f"{dataset}_{name}" if dataset.startswith("LVIS") else name


def load_config(config):
    """Returns a frozen CfgNode for a zoo name (with or without `.yaml`), a derived d2tf name, or a yaml path."""
    from detectron2.config import get_cfg

    cfg = get_cfg()
    _merge_yaml(cfg, *read_yaml(config))
    if _derived(config):
        cfg.merge_from_list(_derived(config)[1])
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.freeze()
    return cfg


def read_yaml(config):
    """(path, content) of the yaml file `config` names (for a derived name, its zoo base): its whole `_BASE_` chain
    read and merged by config_yaml.load_chain. Imports no PyTorch, so a driver refuses a bad config before it starts
    a stage."""
    if _derived(config):
        path = _zoo_yaml(_derived(config)[0])
    elif os.path.isfile(config):
        if config.endswith(".py"):
            raise D2TFError(f"{config}: a LazyConfig .py file is Python that runs when loaded; d2tf reads only yaml "
                            "configs, whose content it can check first")
        path = config
    else:
        path = _zoo_yaml(config)
    return path, load_chain(path)


def _derived(config):
    """(zoo base, overrides) if `config` names a derived d2tf config (`.yaml` may be left out), else None."""
    return DERIVED.get(config if config.endswith(".yaml") else config + ".yaml")


def _zoo_yaml(config):
    """The path of the zoo yaml a model-zoo name stands for (`.yaml` may be left out): the file
    detectron2.model_zoo.get_config_file returns."""
    configs = configs_dir()
    for name in [config] if config.endswith((".yaml", ".py")) else [config + ".yaml", config + ".py"]:
        if not os.path.isfile(os.path.join(configs, name)):
            continue
        if name.endswith(".py"):
            raise D2TFError(f"{config}: detectron2's LazyConfig (.py) zoo configs are not supported yet; use a "
                            f".yaml zoo config (e.g. {DEFAULT_EXAMPLE})")
        return os.path.join(configs, name)
    raise D2TFError(
        f"unknown config {config!r}: not a file, not a detectron2 model-zoo name "
        f"(e.g. {DEFAULT_EXAMPLE}), not one of {sorted(DERIVED)}"
    )


def configs_dir():
    """detectron2's model-zoo configs directory, found without importing detectron2 (which imports PyTorch)."""
    return os.path.join(importlib.util.find_spec("detectron2").submodule_search_locations[0], "model_zoo", "configs")


def _merge_yaml(cfg, path, content):
    """Merges a yaml config's `content` (read_yaml's) into cfg as detectron2's merge_from_file merges `path`:
    detectron2 reading the file itself could fall back to unsafe loading."""
    from detectron2.config.compat import downgrade_config, guess_version, upgrade_config

    try:
        loaded = type(cfg)(content)
        version = loaded.get("VERSION") or guess_version(loaded, path)
        if version == cfg.VERSION:
            cfg.merge_from_other_cfg(loaded)
        else:  # an older config is merged at its version, then upgraded
            older = downgrade_config(cfg, to_version=version)
            older.merge_from_other_cfg(loaded)
            cfg.clear()
            cfg.update(upgrade_config(older))
    except (KeyError, ValueError, TypeError, AssertionError) as e:
        raise D2TFError(f"{path}: not a detectron2 yacs config: {e}") from None
    except Exception as e:  # yaml that is not a mapping of config keys fails in many types
        raise D2TFError(f"{path}: cannot read config ({type(e).__name__}: {str(e).splitlines()[0]})") from None
