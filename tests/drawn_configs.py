"""A seeded generator of models as their users may have trained them: configs drawn from the space export/supported.py
accepts (its _TUNABLE keys and carried values, on every meta-architecture and backbone it converts), each a zoo config
plus overrides, for the suite's small sizes. Every draw must convert and pass verify's exact gate against detectron2:
the space is what d2tf claims to take, so a draw that fails is a bug of d2tf, not of the draw.

`python -m tests.drawn_configs SEED...` converts draws outside the suite (docs/testing.md), the suite converts
builds.DRAWN_SEEDS.
"""

import random

# The zoo config each draw starts from, by (backbone, head).
BASES = {
    ("FPN", "faster"): "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
    ("FPN", "mask"): "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
    ("FPN", "cascade"): "Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml",
    ("FPN", "retinanet"): "COCO-Detection/retinanet_R_50_FPN_3x.yaml",
    ("C4", "faster"): "COCO-Detection/faster_rcnn_R_50_C4_3x.yaml",
    ("C4", "mask"): "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml",
    ("DC5", "faster"): "COCO-Detection/faster_rcnn_R_50_DC5_3x.yaml",
}
_RATIOS = (0.25, 0.5, 1.0, 2.0, 4.0)
_NORMS = ("", "GN", "BN")
# ImageNet's statistics in BGR order (the zoo's) and RGB order with the std torchvision's backbones use.
_PIXELS = {"BGR": ([103.53, 116.28, 123.675], [1.0, 1.0, 1.0]),
           "RGB": ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])}


def draw(seed):
    """(zoo config, overrides as a merge_from_list list, a one-line description) of draw `seed`."""
    rng = random.Random(seed)
    backbone, head = rng.choice(sorted(BASES))
    settings = {}
    put = settings.__setitem__

    depth = rng.choice((18, 34, 50, 101) if backbone == "FPN" else (50, 101))
    put("MODEL.RESNETS.DEPTH", depth)
    if depth < 50:
        put("MODEL.RESNETS.RES2_OUT_CHANNELS", 64)
    else:
        groups, width = rng.choice(((1, 64), (1, 64), (32, 4), (8, 8)))
        put("MODEL.RESNETS.NUM_GROUPS", groups)
        put("MODEL.RESNETS.WIDTH_PER_GROUP", width)
        put("MODEL.RESNETS.STRIDE_IN_1X1", rng.random() < 0.5)
    put("MODEL.RESNETS.NORM", rng.choice(("FrozenBN", "FrozenBN", "BN", "GN")))
    image_format = rng.choice(("BGR", "RGB"))
    put("INPUT.FORMAT", image_format)
    put("MODEL.PIXEL_MEAN", _PIXELS[image_format][0])
    put("MODEL.PIXEL_STD", _PIXELS[image_format][1])

    levels = _feature_maps(rng, settings, backbone, head)
    _anchors(rng, settings, levels, head)
    if head == "retinanet":
        put("MODEL.RETINANET.NUM_CLASSES", rng.randint(1, 12))
        put("MODEL.RETINANET.NUM_CONVS", rng.randint(1, 4))
        put("MODEL.RETINANET.NORM", rng.choice(("", "BN")))  # detectron2 0.6 cannot build a GN RetinaNet head
        put("MODEL.RETINANET.BBOX_REG_WEIGHTS", _weights(rng, 1.0))
        put("MODEL.RETINANET.SCORE_THRESH_TEST", rng.choice((0.05, 0.3, 0.6)))
        put("MODEL.RETINANET.NMS_THRESH_TEST", rng.choice((0.4, 0.5, 0.6)))
    else:
        _rcnn(rng, settings, backbone, head)
        put("MODEL.PROPOSAL_GENERATOR.MIN_SIZE", rng.choice((0, 0, 2)))  # px: smaller proposals dropped
    put("MODEL.RESNETS.STEM_OUT_CHANNELS", rng.choice((64, 64, 32)))
    if depth >= 50:  # last, so that the BasicBlock draws (the suite's DRAWN_SEEDS) stay as they are
        stages = [rng.random() < 0.25 for _ in range(3)]  # res3-res5; C4's res5 head has none (detectron2 asserts)
        put("MODEL.RESNETS.DEFORM_ON_PER_STAGE", [False, *stages[:2], stages[2] and backbone != "C4"])
    overrides = [item for pair in settings.items() for item in pair]
    return BASES[backbone, head], overrides, describe(backbone, head, settings)


def _feature_maps(rng, settings, backbone, head):
    """Draws the FPN's maps, the RPN's and ROI heads' (FPN R-CNN); returns how many maps carry anchors."""
    put = settings.__setitem__
    if backbone != "FPN":
        return 1
    put("MODEL.FPN.OUT_CHANNELS", rng.choice((64, 128, 256)))
    put("MODEL.FPN.NORM", rng.choice(_NORMS))
    put("MODEL.FPN.FUSE_TYPE", rng.choice(("sum", "sum", "avg")))
    if head == "retinanet":  # P3-P7, or its head on P3-P6 only
        if rng.random() < 0.25:
            put("MODEL.RETINANET.IN_FEATURES", ["p3", "p4", "p5", "p6"])
            return 4
        return 5
    if rng.random() < 0.25:  # an FPN on res3-res5: P3-P6
        put("MODEL.RESNETS.OUT_FEATURES", ["res3", "res4", "res5"])
        put("MODEL.FPN.IN_FEATURES", ["res3", "res4", "res5"])
        put("MODEL.RPN.IN_FEATURES", ["p3", "p4", "p5", "p6"])
        put("MODEL.ROI_HEADS.IN_FEATURES", ["p3", "p4", "p5"])
        return 4
    return 5


def _anchors(rng, settings, levels, head):
    """Sizes doubling per map from a drawn smallest one (one or two per map, three on RetinaNet's), ratios a drawn
    subset, the same on every map (detectron2's heads predict as many anchors on each)."""
    smallest = rng.choice((8, 16, 24, 32, 48))
    per_level = 3 if head == "retinanet" else rng.choice((1, 1, 2))
    steps = [2 ** (k / per_level) for k in range(per_level)]
    sizes = [[round(smallest * 2 ** level * step, 2) for step in steps] for level in range(levels)]
    if levels == 1:  # C4 and DC5: every size on res4's one map
        sizes = [[smallest * 2 ** k for k in range(rng.randint(3, 5))]]
    ratios = sorted(rng.sample(_RATIOS, rng.randint(1, 5)))
    settings["MODEL.ANCHOR_GENERATOR.SIZES"] = sizes
    settings["MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"] = [ratios]
    settings["MODEL.ANCHOR_GENERATOR.OFFSET"] = rng.choice((0.0, 0.0, 0.5))


def _rcnn(rng, settings, backbone, head):
    put = settings.__setitem__
    put("MODEL.ROI_HEADS.NUM_CLASSES", rng.randint(1, 12))
    put("MODEL.ROI_HEADS.SCORE_THRESH_TEST", rng.choice((0.05, 0.3, 0.6)))
    put("MODEL.ROI_HEADS.NMS_THRESH_TEST", rng.choice((0.4, 0.5, 0.6)))
    put("MODEL.RPN.NMS_THRESH", rng.choice((0.5, 0.6, 0.7, 0.8)))
    put("MODEL.RPN.BBOX_REG_WEIGHTS", _weights(rng, 1.0))
    if backbone == "FPN" and rng.random() < 0.3:
        put("MODEL.RPN.CONV_DIMS", [rng.choice((-1, 64)), rng.choice((-1, 64))])
    box = "MODEL.ROI_BOX_HEAD."
    put(box + "POOLER_TYPE", rng.choice(("ROIAlignV2", "ROIAlignV2", "ROIAlign")))
    put(box + "POOLER_SAMPLING_RATIO", rng.choice((0, 2)))
    if backbone == "C4":  # its box head is res5, which halves the pooled map (and pools the masks' too)
        put(box + "POOLER_RESOLUTION", rng.choice((12, 14)))
    else:
        put(box + "POOLER_RESOLUTION", rng.choice((5, 7, 9)))
        convs, fcs = rng.choice(((0, 2), (0, 1), (2, 1), (4, 1), (1, 2)))
        put(box + "NUM_CONV", convs)
        put(box + "NUM_FC", fcs)
        put(box + "CONV_DIM", rng.choice((64, 128, 256)))
        put(box + "FC_DIM", rng.choice((256, 512, 1024)))
        put(box + "NORM", rng.choice(_NORMS))
    if head == "cascade":
        stages = rng.randint(2, 4)
        put("MODEL.ROI_BOX_CASCADE_HEAD.IOUS", [0.5 + 0.1 * s for s in range(stages)])
        put("MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS", [_weights(rng, 10.0 * (s + 1)) for s in range(stages)])
    else:
        put(box + "BBOX_REG_WEIGHTS", _weights(rng, 10.0))
        put(box + "CLS_AGNOSTIC_BBOX_REG", rng.random() < 0.25)
    if head in ("mask", "cascade") and rng.random() < 0.8:
        mask = "MODEL.ROI_MASK_HEAD."
        put("MODEL.MASK_ON", True)
        put(mask + "POOLER_RESOLUTION", rng.choice((7, 14)))  # C4 pools masks with the box head's pooler
        put(mask + "POOLER_TYPE", rng.choice(("ROIAlignV2", "ROIAlign")))
        put(mask + "POOLER_SAMPLING_RATIO", rng.choice((0, 2)))
        put(mask + "CLS_AGNOSTIC_MASK", rng.random() < 0.25)
        if backbone == "FPN":
            put(mask + "NUM_CONV", rng.randint(1, 4))
            put(mask + "CONV_DIM", rng.choice((64, 128, 256)))
            put(mask + "NORM", rng.choice(_NORMS))
    elif head in ("mask", "cascade"):
        put("MODEL.MASK_ON", False)


def _weights(rng, scale):
    """Box-regression weights (x, y, w, h) around `scale`: detectron2's (10, 10, 5, 5) or a drawn pair."""
    xy = scale * rng.choice((1.0, 2.0, 0.5))
    return [xy, xy, xy / 2, xy / 2] if rng.random() < 0.7 else [scale, scale, scale, scale]


def describe(backbone, head, settings):
    """One line saying what a draw is: ResNet, backbone, head, and the format."""
    depth, groups = settings["MODEL.RESNETS.DEPTH"], settings.get("MODEL.RESNETS.NUM_GROUPS", 1)
    resnet = f"R{depth}" if groups == 1 else f"X{depth}-{groups}x{settings['MODEL.RESNETS.WIDTH_PER_GROUP']}d"
    if head == "retinanet":
        kind = "RetinaNet"
    else:
        kind = ("Cascade " if head == "cascade" else "") + ("Mask" if settings.get("MODEL.MASK_ON") else "Faster")
        kind += " R-CNN"
    return f"{resnet}-{backbone} {kind}, {settings['MODEL.RESNETS.NORM']} ResNet, {settings['INPUT.FORMAT']}"


def main(argv):
    """Converts each seed's draw as the suite does (its small sizes, exact RoIAlign, no SavedModel or TFLite) in a
    directory of its own under $TMPDIR, printing one line per draw: the draw, then verify's verdict or the error."""
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    from tests import builds

    root = Path(tempfile.mkdtemp(prefix="d2tf-draws-"))
    failed = 0
    for seed in map(int, argv):
        config, directory = f"drawn/seed{seed}.yaml", root / f"seed{seed}"
        builds.OWN_MODELS[config] = draw(seed)[:2]
        directory.mkdir()
        yaml = builds.small_config(config, directory)
        start = time.perf_counter()
        steps = [["calibrate", "--config", yaml, "--out", directory / "weights.pkl", "--seed", str(seed)],
                 ["convert", "--config", yaml, "--weights", directory / "weights.pkl", "--out", directory / "out",
                  "--roialign", "exact", "--no-saved-model", "--no-tflite",
                  "--trace-size", "x".join(map(str, builds.TRACE_SIZE))]]
        for step in steps:
            result = subprocess.run([sys.executable, "-m", "d2tf", *map(str, step)], capture_output=True, text=True)
            if result.returncode:
                break
        errors = [line for line in result.stderr.splitlines() if line.startswith("error")] or \
            result.stderr.splitlines()[-1:]
        verdict = "passed" if result.returncode == 0 else f"FAILED ({step[0]}): {' '.join(errors)[:400]}"
        failed += result.returncode != 0
        print(f"seed {seed}: {draw(seed)[2]}: {verdict} in {time.perf_counter() - start:.0f} s ({directory})",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
