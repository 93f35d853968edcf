"""Calibrated test checkpoints (d2tf.calibrate): load cleanly into detectron2 and detect varied objects."""

import numpy as np
import pytest
import torch

from core import zoo
from core.checkpoint import load_weights
from core.synthetic import synthetic_image
from tests.builds import SUITE
from tests.processes import run_python


def _d2_model(config, weights_path):
    """detectron2's own loader (DetectionCheckpointer, with its zoo matching heuristics) and what it reports."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    model = build_model(zoo.load_config(config)).eval()
    checkpointer = DetectionCheckpointer(model)
    incompatible = checkpointer._load_model(checkpointer._load_file(str(weights_path)))
    return model, incompatible


def _detect(model, height=256, width=320):
    image = torch.from_numpy(synthetic_image(height, width)).permute(2, 0, 1)
    with torch.no_grad():
        return model.inference([{"image": image}], do_postprocess=False)[0]


@pytest.mark.parametrize("config", SUITE, ids=zoo.short_name)
def test_checkpoint_loads_into_detectron2_exactly(config, checkpoint_path):
    yaml, weights = checkpoint_path(config)  # the test config: the zoo's, or its tests/builds.py VARIANTS
    _, incompatible = _d2_model(str(yaml), weights)
    assert incompatible.missing_keys == []
    assert incompatible.unexpected_keys == []
    assert incompatible.incorrect_shapes == []  # detections per architecture: tests/test_export.py


@pytest.mark.architecture("COCO-Detection/faster_rcnn_R_50_C4_3x.yaml")
def test_pth_checkpoint_loads_into_detectron2(checkpoint_path):
    config = "COCO-Detection/faster_rcnn_R_50_C4_3x.yaml"
    model, incompatible = _d2_model(config, checkpoint_path(config, ".pth")[1])
    assert (incompatible.missing_keys, incompatible.unexpected_keys, incompatible.incorrect_shapes) == ([], [], [])
    pkl, pth = load_weights(checkpoint_path(config)[1]), load_weights(checkpoint_path(config, ".pth")[1])
    assert sorted(pkl) == sorted(pth)
    for name in pkl:  # the same weights, whichever format
        np.testing.assert_array_equal(pkl[name], pth[name])


@pytest.mark.architecture("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")
def test_r50_fpn_mask_gives_many_distinct_detections(checkpoint_path):
    config = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
    model, _ = _d2_model(config, checkpoint_path(config)[1])
    det = _detect(model)
    boxes = det.pred_boxes.tensor
    assert len(det) >= 20
    assert len(torch.unique(boxes.round(decimals=1), dim=0)) >= 20, "boxes must be distinct"
    sizes = boxes[:, 2:] - boxes[:, :2]
    assert (sizes > 4).all() and (sizes < 320).all(), "no degenerate or image-sized boxes"
    assert float(det.scores.max() - det.scores.min()) > 0.2, "scores should vary"
    assert len(torch.unique(det.pred_classes)) >= 3
    masks = det.pred_masks
    assert float(masks.std()) > 0.1, "masks should not be flat"


def test_generation_is_deterministic():
    from d2tf.calibrate import calibrated_weights

    cfg = zoo.load_config("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml")
    a, b = calibrated_weights(cfg, seed=3), calibrated_weights(cfg, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = calibrated_weights(cfg, seed=4)
    assert not np.array_equal(a["roi_heads.box_predictor.cls_score.weight"], c["roi_heads.box_predictor.cls_score.weight"])


@pytest.mark.parametrize("zoo_config, head", [
    ("COCO-Detection/rpn_R_50_FPN_1x.yaml", "proposal_generator.rpn_head.objectness_logits"),
    ("Misc/semantic_R_50_FPN_1x.yaml", "sem_seg_head.predictor"),
])
def test_meta_architectures_without_roi_heads_are_calibrated(zoo_config, head):
    """The generator runs each meta-architecture's own eval forward: its norms take the activations' statistics and
    its prediction layer is scaled (not `config`: conftest would take it for an architecture to build)."""
    from d2tf.calibrate import calibrated_weights

    weights = calibrated_weights(zoo.load_config(zoo_config))
    stem = weights["backbone.bottom_up.stem.conv1.norm.running_var"]
    assert not np.allclose(stem, stem[0]), "the stem's FrozenBN statistics were taken from its activations"
    assert np.isfinite(weights[head + ".weight"]).all() and weights[head + ".weight"].std() > 0


def test_retinanet_gives_distinct_detections_with_unsaturated_scores():
    """RetinaNet's sigmoid classifier is shifted as well as scaled: without the shift no anchor passes the test
    threshold, with a wider spread the top scores round to 1.0 and tie (not `config`: see above)."""
    from detectron2.modeling import build_model

    from d2tf.calibrate import calibrated_weights

    cfg = zoo.load_config("COCO-Detection/retinanet_R_50_FPN_3x.yaml")
    model = build_model(cfg).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in calibrated_weights(cfg).items()})
    image = torch.from_numpy(synthetic_image(256, 320)).permute(2, 0, 1)
    with torch.no_grad():
        det = model([{"image": image}])[0]["instances"]
    assert len(det) == cfg.TEST.DETECTIONS_PER_IMAGE
    boxes = det.pred_boxes.tensor.round(decimals=1)
    assert len(torch.unique(boxes, dim=0)) >= 0.9 * len(det), "boxes must be distinct (one anchor may have 2 classes)"
    assert len(torch.unique(det.scores)) == len(det) and float(det.scores.max()) < 0.99
    assert len(torch.unique(det.pred_classes)) >= 2


@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5", "many"])
def test_a_seed_out_of_range_is_one_line(seed):
    result = run_python("-m", "d2tf.calibrate", "--config", zoo.DEFAULT_EXAMPLE, "--out", "unused.pkl", "--seed", seed)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: d2tf calibrate: argument --seed: expected a whole number from 0 to 4294967295, got "
        f"'{seed}' (see --help)"]


@pytest.mark.parametrize("name, keys, scale", [
    # detectron2's defaults: the spread calibrate chose for them
    ("roi_heads.box_predictor.bbox_pred", {}, 1.0),
    ("proposal_generator.rpn_head.anchor_deltas", {}, 1.0),
    # decoded deltas are divided by the weights: twice the weights, twice the predicted deltas (the width's weight)
    ("roi_heads.box_predictor.bbox_pred", {"MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS": (20.0, 20.0, 10.0, 10.0)}, 2.0),
    ("proposal_generator.rpn_head.anchor_deltas", {"MODEL.RPN.BBOX_REG_WEIGHTS": (1.0, 1.0, 0.5, 0.5)}, 0.5),
    ("head.bbox_pred", {"MODEL.RETINANET.BBOX_REG_WEIGHTS": (1.0, 1.0, 0.25, 0.25)}, 0.25),
    # a cascade stage against detectron2's default for that stage; a fourth against the last default
    ("roi_heads.box_predictor.1.bbox_pred", {"MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS": (
        (10.0, 10.0, 5.0, 5.0), (10.0, 10.0, 5.0, 5.0))}, 0.5),
    ("roi_heads.box_predictor.3.bbox_pred", {"MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS": (
        (10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0), (60.0, 60.0, 30.0, 30.0))}, 2.0),
    ("roi_heads.box_predictor.cls_score", {"MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS": (20.0, 20.0, 10.0, 10.0)}, 1.0),
])
def test_box_deltas_are_drawn_in_proportion_to_the_models_regression_weights(name, keys, scale):
    from detectron2.config import get_cfg

    from d2tf.calibrate import _delta_scale

    cfg = get_cfg()
    cfg.merge_from_list([item for pair in keys.items() for item in pair])
    assert _delta_scale(cfg, name) == scale
