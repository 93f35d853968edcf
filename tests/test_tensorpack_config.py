"""The flags and tensorpack_config.py (tf_import.tensorpack_config), and tensorpack's own model
(examples/FasterRCNN, unmodified; where the tests find it: docs/tensorpack.md) running the npz with them: it must
compute what our tensorpack-mode graph computes: the pb of builds converted in tensorpack mode, verify's switched
copy of the fixed graph (onnxruntime) for the others. The conversion's verify ran it (`--tensorpack`); these tests
compare kept outputs."""

import dataclasses
import json
import os
import re

import numpy as np
import pytest

from core import zoo
from core.model_info import Architecture
from tests.builds import CUSTOM, CUSTOM_ANCHORS_MASK, CUSTOM_TUNED, IMAGES, TENSORPACK_CLIENT, needs_tensorpack
from tests.model_infos import model_info
from tests.parity import assert_same_detections
from tests.processes import CHILDREN, run_python
from tf_import import tensorpack_config as tpc
from tf_import.cli import tensorpack_files
from verify.run import tensorpack_computes_the_graph

# What "the same" means here (issue 11): every detection matched at IoU >= 0.99, boxes within 0.05 px, scores and
# masks within 1e-4 (two TF graphs of the same computation: float round-off only).
IOU, BOX_TOL, SCORE_TOL, MASK_TOL = 0.99, 0.05, 1e-4, 1e-4


@pytest.mark.parametrize("config", zoo.NPZ_CONFIGS, ids=zoo.short_name)
def test_tensorpacks_own_model_equals_the_tensorpack_mode_graph(config, pipeline, measure):
    needs_tensorpack()
    p = pipeline(config)
    reference, candidate = p.outputs(p.graph("tensorpack")), p.outputs("tensorpack")
    backbone = p.info.architecture.backbone
    from verify.report import figures_of

    figures = figures_of((p.out / "report.md").read_text())
    # the images verify ran, at the sizes they ran at
    compared = [key for key, size in figures["images"].items() if tensorpack_computes_the_graph(backbone, *size)]
    assert compared, "at least the 256x320 image (verify.run.tensorpack_computes_the_graph says why not the other)"
    for key in compared:
        assert len(reference[key]["scores"]) >= 10
        assert_same_detections(reference[key], candidate[key], BOX_TOL, SCORE_TOL, MASK_TOL if p.mask else None, IOU)
    rows = {r["against"]: r for r in figures["tensorpack"]}
    graph = rows["model.pb" if p.roialign == "tensorpack" else "other:tensorpack"]
    assert graph["images"] == len(compared) and graph["strict_agreement"] == 1.0, (
        "verify --tensorpack reports it too, on the images where tensorpack computes the graph")
    measure("tensorpack's model (npz + tensorpack_config.py): share of detections matched",
            architecture=zoo.short_name(config),
            vs=p.graph("tensorpack"), vs_graph_iou99=graph["strict_agreement"],
            vs_detectron2_iou90=rows["detectron2"]["agreement"],
            vs_detectron2_iou99=rows["detectron2"]["strict_agreement"])


@pytest.mark.architecture(CUSTOM)
def test_class_count_reaches_tensorpack_through_the_registered_class_names(pipeline):
    """K=3: tensorpack's finalize_configs takes the class count from the dataset's class_names, so
    tensorpack_config.py registers K+1 names; with them tensorpack's model built 4-way outputs that took the npz
    (the model comparison above passed for this build too)."""
    needs_tensorpack()
    p = pipeline(CUSTOM)
    settings = {"__file__": str(p.out / "tensorpack_config.py")}
    exec((p.out / "tensorpack_config.py").read_text(), settings)
    assert settings["CLASS_NAMES"] == ["BG", "class1", "class2", "class3"]
    assert not any(f.startswith("DATA.NUM_CATEGORY") for f in settings["FLAGS"]), "a flag that has no effect"
    with np.load(p.out / "model.npz") as npz:
        assert npz["fastrcnn/outputs/class/W"].shape == (512, 4), "MODEL.ROI_BOX_HEAD.FC_DIM 512"
        assert npz["fastrcnn/outputs/box/W"].shape == (512, 16)
    assert {int(c) for key in IMAGES for c in p.outputs("tensorpack")[key]["classes"]} <= {0, 1, 2}


@pytest.mark.architecture(CUSTOM)
def test_tuned_keys_and_rgb_input_reach_tensorpack_as_its_flags(pipeline):
    """CUSTOM's tuned keys (tests/builds.py) and RGB input become tensorpack's flags; with them tensorpack's model
    computed what the tensorpack-mode graph does (test_tensorpacks_own_model_equals_the_tensorpack_mode_graph)."""
    p = pipeline(CUSTOM)
    assert (p.info.tuned, p.info.input.format) == (CUSTOM_TUNED, "RGB")
    flags = (p.out / "flags.txt").read_text().split()
    for flag in ("'RPN.ANCHOR_SIZES=(24,48,96,192,384)'", "'RPN.ANCHOR_RATIOS=(0.25,0.5,1.0,2.0,4.0)'",
                 "'RPN.PROPOSAL_NMS_THRESH=0.6'", "'FRCNN.BBOX_REG_WEIGHTS=[20.0,20.0,10.0,10.0]'",
                 "'FPN.FRCNN_FC_HEAD_DIM=512'", "'FPN.NUM_CHANNEL=128'", "'BACKBONE.STRIDE_1X1=False'",
                 "'FPN.FRCNN_HEAD_FUNC=fastrcnn_4conv1fc_head'", "'FPN.FRCNN_CONV_HEAD_DIM=128'",
                 "'PREPROC.PIXEL_MEAN=[123.675,116.28,103.53]'", "'PREPROC.PIXEL_STD=[58.395,57.12,57.375]'"):
        assert flag in flags


@pytest.mark.architecture(CUSTOM_ANCHORS_MASK)
def test_a_mask_rcnns_tuned_anchors_reach_tensorpack_as_its_flags(pipeline):
    """The issue's first row on a Mask R-CNN (tests/builds.py CUSTOM_ANCHORS_MASK): its npz, with these flags, ran in
    tensorpack's own model (test_tensorpacks_own_model_equals_the_tensorpack_mode_graph)."""
    p = pipeline(CUSTOM_ANCHORS_MASK)
    assert p.info.tuned == {"MODEL.ANCHOR_GENERATOR.SIZES": [[16], [32], [64], [128], [256]],
                            "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": [[0.25, 0.5, 1.0, 2.0, 4.0]]}
    flags = (p.out / "flags.txt").read_text().split()
    assert {"'RPN.ANCHOR_SIZES=(16,32,64,128,256)'", "'RPN.ANCHOR_RATIOS=(0.25,0.5,1.0,2.0,4.0)'",
            "'MODE_MASK=True'"} <= set(flags)


@pytest.mark.architecture(CUSTOM)
def test_tensorpacks_resize_equals_detectron2s_test_resize(pipeline):
    """INPUT.MIN/MAX_SIZE_TEST 600/1000 reach tensorpack's predict_image, including a wide image whose long side
    hits the cap (tensorpack's FPN rounds MAX_SIZE up to 1024 for its anchors; tensorpack_config.py restores it)."""
    from detectron2.data.transforms import ResizeShortestEdge

    needs_tensorpack()
    p = pipeline(CUSTOM)
    sizes = [(480, 640), (300, 1000), (1200, 500), (333, 777), (2000, 1000)]
    result = run_python(os.path.join(CHILDREN, "tensorpack_resize.py"), TENSORPACK_CLIENT, p.out,
                        ",".join(f"{h}x{w}" for h, w in sizes))
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    want = [list(ResizeShortestEdge.get_output_shape(h, w, 600, 1000)) for h, w in sizes]
    assert got == want
    assert want[1] == [300, 1000], "the cap binds for one image"


def _info(**changes):
    """tests.model_infos.model_info with `changes`, an Architecture field's among them changing the architecture;
    a C4 model's RPN takes 6000 proposals before NMS, as the zoo's C4 configs do."""
    architecture = {key: changes.pop(key) for key in list(changes) if key in _ARCHITECTURE_FIELDS}
    test = {"rpn_pre_nms_topk": 6000 if architecture.get("backbone") == "C4" else 1000, **changes.pop("test", {})}
    return model_info(architecture=architecture, test=test, **changes)


_ARCHITECTURE_FIELDS = {field.name for field in dataclasses.fields(Architecture)}


MEAN_STD = "'PREPROC.PIXEL_MEAN=[123.675,116.28,103.53]' 'PREPROC.PIXEL_STD=[1.0,1.0,1.0]' 'RPN.MIN_SIZE=1e-50'"


@pytest.mark.parametrize("info, line", [
    (_info(), "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    (_info(backbone="C4", mask=False), "'MODE_MASK=False' 'MODE_FPN=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    (_info(depth=101, mask=False), "'MODE_MASK=False' 'MODE_FPN=True' 'FPN.CASCADE=False' "
     "'BACKBONE.RESNET_NUM_BLOCKS=[3,4,23,3]' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    (_info(cascade=True), "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=True' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    (_info(backbone="C4", depth=101), "'MODE_MASK=True' 'MODE_FPN=False' 'BACKBONE.RESNET_NUM_BLOCKS=[3,4,23,3]' "
     "'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    # The class count is no flag (tensorpack_config.py registers the names); thresholds and the resize are.
    (_info(num_classes=3, pixel_std_bgr=[57.375, 57.12, 58.395], resize={"min_size_test": 1024, "max_size_test": 2048},
           test={"score_thresh": 0.3, "nms_thresh": 0.6, "detections_per_image": 100, "rpn_pre_nms_topk": 1000,
                 "rpn_post_nms_topk": 1000}),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' "
     "'PREPROC.PIXEL_MEAN=[123.675,116.28,103.53]' 'PREPROC.PIXEL_STD=[58.395,57.12,57.375]' 'RPN.MIN_SIZE=1e-50' "
     "'PREPROC.TEST_SHORT_EDGE_SIZE=1024' 'PREPROC.MAX_SIZE=2048' 'TEST.RESULT_SCORE_THRESH=0.3' "
     "'TEST.FRCNN_NMS_THRESH=0.6'"),
    # Counts: C4 has tensorpack's pre- and post-NMS proposal counts; FPN one count per level and overall.
    (_info(backbone="C4", test={"score_thresh": 0.05, "nms_thresh": 0.5, "detections_per_image": 30,
                                "rpn_pre_nms_topk": 300, "rpn_post_nms_topk": 100}),
     "'MODE_MASK=True' 'MODE_FPN=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD + " 'TEST.RESULTS_PER_IM=30' "
     "'RPN.TEST_PRE_NMS_TOPK=300' 'RPN.TEST_POST_NMS_TOPK=100'"),
    (_info(test={"score_thresh": 0.05, "nms_thresh": 0.5, "detections_per_image": 100, "rpn_pre_nms_topk": 200,
                 "rpn_post_nms_topk": 200}),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD +
     " 'RPN.TEST_PER_LEVEL_NMS_TOPK=200'"),
    # Tuned keys, after the others in the order the model info lists them: FPN's anchor sizes one per level.
    (_info(tuned={"MODEL.ANCHOR_GENERATOR.SIZES": [[16], [32], [64], [128], [256]],
                  "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": [[0.25, 0.5, 1.0, 2.0, 4.0]],
                  "MODEL.RPN.NMS_THRESH": 0.6, "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS": [20.0, 20.0, 10.0, 10.0],
                  "MODEL.ROI_BOX_HEAD.FC_DIM": 512, "MODEL.ROI_BOX_HEAD.CONV_DIM": 128,
                  "MODEL.ROI_MASK_HEAD.CONV_DIM": 128, "MODEL.FPN.OUT_CHANNELS": 128}),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD +
     " 'RPN.ANCHOR_SIZES=(16,32,64,128,256)' 'RPN.ANCHOR_RATIOS=(0.25,0.5,1.0,2.0,4.0)' 'RPN.PROPOSAL_NMS_THRESH=0.6'"
     " 'FRCNN.BBOX_REG_WEIGHTS=[20.0,20.0,10.0,10.0]' 'FPN.FRCNN_FC_HEAD_DIM=512' 'MRCNN.HEAD_DIM=128'"
     " 'FPN.NUM_CHANNEL=128'"),
    # FPN's 4conv1fc box head, named once whichever count comes first; its conv width.
    (_info(mask=False, tuned={"MODEL.ROI_BOX_HEAD.NUM_FC": 1, "MODEL.ROI_BOX_HEAD.NUM_CONV": 4,
                              "MODEL.ROI_BOX_HEAD.CONV_DIM": 128}),
     "'MODE_MASK=False' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD +
     " 'FPN.FRCNN_HEAD_FUNC=fastrcnn_4conv1fc_head' 'FPN.FRCNN_CONV_HEAD_DIM=128'"),
    # C4: one feature map, all its sizes; its box head is res5, which no box-head width reaches.
    (_info(backbone="C4", mask=False, tuned={"MODEL.ANCHOR_GENERATOR.SIZES": [[16, 32, 64]],
                                             "MODEL.ROI_BOX_HEAD.FC_DIM": 512}),
     "'MODE_MASK=False' 'MODE_FPN=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD + " 'RPN.ANCHOR_SIZES=(16,32,64)'"),
    (_info(backbone="C4", mask=False, tuned={"MODEL.ANCHOR_GENERATOR.SIZES": [[64]]}),
     "'MODE_MASK=False' 'MODE_FPN=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD + " 'RPN.ANCHOR_SIZES=(64,)'"),
    # A cascade's stages take their weights from ROI_BOX_CASCADE_HEAD, not ROI_BOX_HEAD's: no flag.
    (_info(cascade=True, tuned={"MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS": [20.0, 20.0, 10.0, 10.0]}),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=True' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    # A model that sampled 2x2 points per bin computes tensorpack's RoIAlign: no flag.
    (_info(tuned={"MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO": 2, "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO": 2}),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    # Three stages (tensorpack's count) with other weights: tensorpack's CASCADE.BBOX_REG_WEIGHTS. ROIAlignV2 is
    # tensorpack's RoIAlign, however the reference pooled.
    (_info(cascade=True, tuned={"MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS": [[5, 5, 2, 2], [10, 10, 5, 5],
                                                                            [20, 20, 10, 10]],
                                "MODEL.ROI_MASK_HEAD.POOLER_TYPE": "ROIAlignV2"}),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=True' 'BACKBONE.STRIDE_1X1=True' " + MEAN_STD +
     " 'CASCADE.BBOX_REG_WEIGHTS=[[5,5,2,2],[10,10,5,5],[20,20,10,10]]'"),
    (_info(depth=152, tuned={"MODEL.RESNETS.DEPTH": 152}),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.RESNET_NUM_BLOCKS=[3,8,36,3]' "
     "'BACKBONE.STRIDE_1X1=True' " + MEAN_STD),
    # RGB: the statistics stay in the model's (RGB) order; tensorpack reverses them for its BGR images.
    (_info(input={"format": "RGB"}, pixel_mean_bgr=[123.675, 116.28, 103.53], pixel_std_bgr=[58.395, 57.12, 57.375]),
     "'MODE_MASK=True' 'MODE_FPN=True' 'FPN.CASCADE=False' 'BACKBONE.STRIDE_1X1=True' "
     "'PREPROC.PIXEL_MEAN=[123.675,116.28,103.53]' 'PREPROC.PIXEL_STD=[58.395,57.12,57.375]' 'RPN.MIN_SIZE=1e-50'"),
])
def test_flags_line(info, line):
    assert tpc.flags_line(info) == line


def test_min_size_1e_50_is_zero_in_float32_and_positive_in_python():
    """RPN.MIN_SIZE switches tensorpack's empty-proposal filter on (Python `> 0`) at threshold 0.0 (float32)."""
    assert tpc._EMPTY_PROPOSALS_DROPPED > 0 and np.float32(tpc._EMPTY_PROPOSALS_DROPPED) == 0.0


def test_settings_module_names_the_zoo_classes_and_compiles():
    names = [f"n{i}" for i in range(80)]
    settings = {"__file__": "tensorpack_config.py"}
    exec(tpc.module_source(_info(class_names=names)), settings)
    assert settings["CLASS_NAMES"] == ["BG", *names]
    assert settings["FLAGS"] == tpc.flags(_info())
    assert settings["MAX_SIZE"] == 1333


def test_no_npz_when_detectron2_does_not_resize():
    """INPUT.MIN_SIZE_TEST=0 (no test resize) has no tensorpack equivalent: no tensorpack files, a reason."""
    info = _info(resize={"min_size_test": 0, "max_size_test": 1333})
    with pytest.raises(tpc.NotExpressible, match="MIN_SIZE_TEST=0"):
        tpc.flags(info)
    assert tensorpack_files(None, info) == ({}, None)


@pytest.mark.parametrize("key, value, reason", [
    ("class_agnostic", True, "class-agnostic box regression and masks"),
    ("norm", "SyncBN", "BatchNorm in the FPN and the 4conv1fc box head"),
    ("norm", "GN", "GroupNorm heads"),
    ("aligned", False, "ROIAlign without the half-pixel shift"),
    ("groups", 32, "ResNeXt's grouped convolutions"),
    ("meta", "RetinaNet", "RetinaNet, a one-stage detector"),
    ("meta", "ProposalNetwork", "an RPN alone, proposals out"),
    ("meta", "SemanticSegmentor", "a semantic FPN, per-pixel class logits out"),
    ("meta", "PanopticFPN", "Panoptic FPN, semantic logits out beside the instances"),
    ("keypoints", True, "a keypoint head"),
    ("backbone", "DC5", "a dilated res5 whose one feature map feeds the RPN and conv-fc heads"),
])
def test_no_npz_for_architectures_tensorpack_cannot_configure(key, value, reason):
    """Each of these computes what no tensorpack flag makes its model compute: no tensorpack files, the reason."""
    info = _info(**{key: value})
    with pytest.raises(tpc.NotExpressible, match="^" + reason):
        tpc.flags(info)
    assert tensorpack_files(None, info) == ({}, None)


@pytest.mark.parametrize("key, value, reason", [
    ("MODEL.ANCHOR_GENERATOR.SIZES", [[16, 24], [32], [64], [128], [256]], "several anchor sizes on one FPN level"),
    ("MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", [[0.5, 1.0, 2.0], [1.0], [1.0], [1.0], [1.0]],
     "other aspect ratios on other levels"),
    ("MODEL.ANCHOR_GENERATOR.OFFSET", 0.5, "tensorpack centres anchors on multiples of the stride"),
    ("MODEL.RPN.BBOX_REG_WEIGHTS", [2.0, 2.0, 1.0, 1.0], "tensorpack decodes the RPN's deltas unweighted"),

    ("MODEL.ROI_MASK_HEAD.NUM_CONV", 2, "tensorpack's mask head has 4 convs"),
    ("MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", 14, "tensorpack pools 7x7 for boxes and 14x14 for masks"),
    ("MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION", 7, "tensorpack pools 7x7 for boxes and 14x14 for masks"),
    ("MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO", 4, "tensorpack's roi_align samples 2x2 points per bin"),
    ("MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO", 4, "tensorpack's roi_align samples 2x2 points per bin"),
    ("MODEL.RESNETS.DEPTH", 34, "detectron2 builds it of BasicBlocks"),
    ("MODEL.RESNETS.RES2_OUT_CHANNELS", 64, "tensorpack's bottleneck res2 has 256 channels"),
    ("MODEL.RESNETS.NUM_GROUPS", 64, "tensorpack's resnet_bottleneck has no grouped convolutions"),
    ("MODEL.RESNETS.WIDTH_PER_GROUP", 32, "tensorpack's bottlenecks are ResNet's"),
    ("MODEL.FPN.FUSE_TYPE", "avg", "tensorpack's FPN sums each level"),
    ("MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS", [[10, 10, 5, 5], [20, 20, 10, 10]], "a cascade of 2 stages; "
     "tensorpack's has 3"),
    ("MODEL.RESNETS.NORM", "BN", "d2tf writes tensorpack's FreezeBN ResNet from FrozenBN weights only"),
    ("MODEL.FPN.NORM", "GN", "d2tf writes tensorpack's FPN without norm only"),
    ("MODEL.ROI_BOX_HEAD.NORM", "GN", "tensorpack's normalised heads apply ReLU, then GroupNorm"),
    ("MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK", True, "tensorpack predicts a mask per class"),
    ("MODEL.FPN.IN_FEATURES", ["res3", "res4", "res5"], "tensorpack's FPN takes res2-res5"),
    ("MODEL.RPN.CONV_DIMS", [64], "tensorpack's RPN head has one 3x3 conv as wide as its input"),
    ("MODEL.ROI_MASK_HEAD.POOLER_TYPE", "ROIAlign", "tensorpack's roi_align always shifts by half a pixel"),
])
def test_no_npz_for_a_tuned_value_tensorpacks_config_fixes(key, value, reason):
    """Each tuned key tensorpack's model has no setting for: no tensorpack files, the key, its value and why."""
    info = _info(cascade=key.startswith("MODEL.ROI_BOX_CASCADE_HEAD"), tuned={"MODEL.RPN.NMS_THRESH": 0.6, key: value})
    with pytest.raises(tpc.NotExpressible, match=re.escape(f"{key}={tpc._format(value)}: {reason}")):
        tpc.flags(info)
    assert tensorpack_files(None, info) == ({}, None)


@pytest.mark.parametrize("counts", [{"MODEL.ROI_BOX_HEAD.NUM_CONV": 4}, {"MODEL.ROI_BOX_HEAD.NUM_FC": 1},
                                    {"MODEL.ROI_BOX_HEAD.NUM_CONV": 2, "MODEL.ROI_BOX_HEAD.NUM_FC": 2}])
def test_no_npz_for_a_box_head_tensorpack_has_not(counts):
    """tensorpack's FPN box heads are 2fc and 4conv1fc: any other pair of counts, no npz, the pair named."""
    info = _info(tuned=counts)
    convs, fcs = counts.get("MODEL.ROI_BOX_HEAD.NUM_CONV", 0), counts.get("MODEL.ROI_BOX_HEAD.NUM_FC", 2)
    with pytest.raises(tpc.NotExpressible, match=f"^a box head of {convs} convs and {fcs} fcs"):
        tpc.flags(info)


def test_every_key_a_model_may_tune_has_a_tensorpack_rule():
    """export/supported.py's tunable keys and the rules here are one list: a key added there gets a flag or a
    reason here."""
    from export.supported import _TUNABLE

    assert set(tpc._TUNED) == _TUNABLE
