"""Resolving a `--config` argument (zoo name or yaml path) to a detectron2 CfgNode. PyTorch side only."""

import os

from core import D2TFError
from core.config_yaml import check_chain

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

DEFAULT_EXAMPLE = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"


def short_name(config):
    """`COCO-Detection/faster_rcnn_R_50_C4_3x.yaml` -> `faster_rcnn_R_50_C4_3x` (for file and test names)."""
    return os.path.splitext(os.path.basename(config))[0]


def load_config(config):
    """Returns a frozen CfgNode for a zoo name (with or without `.yaml`), a derived d2tf name, or a yaml path."""
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    name = config if config.endswith(".yaml") else config + ".yaml"
    cfg = get_cfg()
    if name in DERIVED:
        base, overrides = DERIVED[name]
        _merge_yaml(cfg, model_zoo.get_config_file(base))
        cfg.merge_from_list(overrides)
    elif os.path.isfile(config):
        if config.endswith(".py"):
            raise D2TFError(f"{config}: a LazyConfig .py file is Python that runs when loaded; d2tf reads only yaml "
                            "configs, whose content it can check first")
        _merge_yaml(cfg, config)
    else:
        _merge_yaml(cfg, _zoo_yaml(config))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.freeze()
    return cfg


def _zoo_yaml(config):
    """The path of the zoo yaml a model-zoo name stands for (`.yaml` may be left out)."""
    from detectron2 import model_zoo

    for name in [config] if config.endswith((".yaml", ".py")) else [config + ".yaml", config + ".py"]:
        try:
            path = model_zoo.get_config_file(name)
        except RuntimeError:
            continue
        if name.endswith(".py"):
            raise D2TFError(f"{config}: detectron2's LazyConfig (.py) zoo configs are not supported yet; use a "
                            f".yaml zoo config (e.g. {DEFAULT_EXAMPLE})")
        return path
    raise D2TFError(
        f"unknown config {config!r}: not a file, not a detectron2 model-zoo name "
        f"(e.g. {DEFAULT_EXAMPLE}), not one of {sorted(DERIVED)}"
    )


def _merge_yaml(cfg, path):
    """Merges a yaml config into cfg, the only way d2tf reads one: the whole `_BASE_` chain is checked for plain
    YAML first, and detectron2 may not fall back to unsafe loading either."""
    check_chain(path)
    try:
        cfg.merge_from_file(path, allow_unsafe=False)
    except (KeyError, ValueError, TypeError, AssertionError) as e:
        raise D2TFError(f"{path}: not a detectron2 yacs config: {e}") from None
    except Exception as e:  # yaml that is not a mapping of config keys fails in many types
        raise D2TFError(f"{path}: cannot read config ({type(e).__name__}: {str(e).splitlines()[0]})") from None
