"""docs/zoo.md's table of detectron2's model-zoo configs (d2tf/zoo_table.py) is what the code decides today."""

import pytest

from core import zoo
from d2tf.zoo_table import BEGIN, END, record_agreement, recorded_agreement, row, table, zoo_configs
from tests.processes import ROOT, run_python
from verify.agreement import EXACT


def test_docs_zoo_table_is_current():
    with open(f"{ROOT}/docs/zoo.md") as f:
        document = f.read()
    assert document[document.index(BEGIN):document.index(END) + len(END)] == table(), (
        "docs/zoo.md's zoo table is stale: d2tf zoo --write docs/zoo.md")


def test_every_zoo_model_config_has_a_row():
    configs = zoo_configs()
    assert len(configs) == 59 and "Misc/mask_rcnn_R_50_FPN_3x_gn.yaml" in configs
    assert not [c for c in configs if c.startswith("quick_schedules/") or "/Base-" in c]


@pytest.mark.parametrize("zoo_config, reason", [
    ("COCO-Detection/fast_rcnn_R_50_FPN_1x.yaml", "MODEL.LOAD_PROPOSALS=True: a Fast R-CNN that reads precomputed "
     "proposals"),
])
def test_refusals_say_why(zoo_config, reason):  # not `config`: conftest would take it for an architecture to build
    _, delivered, why, agreement = row(zoo_config)
    assert delivered == "refused" and why.startswith(reason) and agreement == "", why


def test_configs_sharing_a_suite_architecture_say_which():
    assert row("Cityscapes/mask_rcnn_R_50_FPN.yaml")[1:3] == (
        "pb, npz", "R50-FPN Mask R-CNN: graph-changing keys equal those of `mask_rcnn_R_50_FPN_3x`")
    assert row("COCO-Detection/faster_rcnn_R_50_C4_3x.yaml")[2] == "R50-C4 Faster R-CNN: converted in the suite"


def test_a_config_tuned_as_a_suite_config_is_checked_as_that_one():
    """The zoo's 1x deformable model has the suite's 3x one's graph, both R50-FPN Mask R-CNN with
    DEFORM_ON_PER_STAGE tuned; R101-DC5 Faster R-CNN is R50-DC5 Faster R-CNN with its depth tuned."""
    assert row("Misc/mask_rcnn_R_50_FPN_1x_dconv_c3-c5.yaml")[1:3] == (
        "pb", "R50-FPN Mask R-CNN: graph-changing keys equal those of `mask_rcnn_R_50_FPN_3x_dconv_c3-c5`. No npz: "
        "MODEL.RESNETS.DEFORM_ON_PER_STAGE=[False,True,True,True]: tensorpack's ResNet has no deformable convolution")
    assert row("COCO-Detection/faster_rcnn_R_101_DC5_3x.yaml")[2].startswith(
        "R101-DC5 Faster R-CNN: graph-changing keys those of `faster_rcnn_R_50_DC5_3x` but tuned MODEL.RESNETS.DEPTH")


def test_a_config_the_suite_has_no_model_of_says_so():
    _, delivered, why, agreement = row("Misc/panoptic_fpn_R_101_dconv_cascade_gn_3x.yaml")
    assert (delivered, agreement) == ("pb", "not recorded") and why.startswith(
        "R101-FPN Cascade Panoptic FPN, GN: the suite converts no model of this architecture (docs/zoo.md says how it "
        "was verified)"), why


def test_lvis_models_are_checked_as_the_suites_lvis_model_of_their_architecture():
    assert row("LVISv1-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml")[1:3] == (
        "pb, npz", "R50-FPN Mask R-CNN: converted in the suite")
    assert row("LVISv0.5-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml")[1:3] == (
        "pb, npz", "R50-FPN Mask R-CNN: graph-changing keys equal those of `LVISv1_mask_rcnn_R_50_FPN_1x`")
    assert row("LVISv1-InstanceSegmentation/mask_rcnn_R_101_FPN_1x.yaml")[2] == (
        "R101-FPN Mask R-CNN: graph-changing keys equal those of `mask_rcnn_R_101_FPN_3x`")


def test_a_model_tensorpack_cannot_express_delivers_the_pb_and_says_why_no_npz():
    _, delivered, why, _ = row("Misc/mask_rcnn_R_50_FPN_1x_cls_agnostic.yaml")
    assert delivered == "pb" and why.startswith("R50-FPN Mask R-CNN, class-agnostic: converted in the suite. No npz: "
                                                "class-agnostic box regression and masks"), why


def test_write_leaves_a_file_without_markers_as_it_was(tmp_path):
    document = tmp_path / "zoo.md"
    document.write_text("no table here\n")
    result = run_python("-m", "d2tf.zoo_table", "--write", document)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: {document} has no zoo-table markers ({BEGIN} ... {END})"]
    assert document.read_text() == "no table here\n"
    missing = tmp_path / "missing.md"
    result = run_python("-m", "d2tf.zoo_table", "--write", missing)
    assert result.stderr.strip().splitlines() == [f"error: cannot read {missing}: No such file or directory"]


def test_every_suite_architecture_has_recorded_figures_within_the_exact_tolerance():
    """The table's last column: `make zoo-table` records them; a new architecture must be recorded too."""
    recorded = recorded_agreement()
    for config in zoo.SUITE_ARCHITECTURES:
        figures = recorded.get(zoo.short_name(config))
        assert figures, f"{zoo.short_name(config)} not recorded: make zoo-table"
        if "semantic" in config:  # a semantic FPN detects nothing: its logits
            assert figures["matched_iou99"] is None and figures["sem_seg"] <= EXACT["sem_seg"], figures
            continue
        tolerance = figures.get("tolerance", EXACT)  # verify's, recorded with the figures (tests/builds.py UNDAMPED)
        assert figures["matched_iou99"] == 1.0 or figures["at_the_edge"], figures  # the rest at the edge
        assert figures["box_px"] <= tolerance["box"], figures
        assert figures["score"] <= tolerance["score"] and (figures["mask"] or 0) <= tolerance["mask"], figures
        assert (figures["mask"] is None) == ("mask_rcnn" not in config and "panoptic" not in config), figures
        assert (figures.get("sem_seg") is None) == ("panoptic" not in config), figures
        if "keypoint" in config:
            assert figures["keypoint_px"] <= tolerance["keypoint"], figures
            assert figures["keypoint_score"] <= tolerance["keypoint_score"], figures


def test_recorded_figures_fill_the_rows_of_their_architecture(tmp_path, monkeypatch):
    import d2tf.zoo_table

    path = tmp_path / "agreement.json"
    record_agreement(path, "mask_rcnn_R_50_FPN_3x", {"runtime": "TensorFlow", "matched_iou99": 1.0,
                                                     "box_px": 0.00031, "score": 9.3e-06, "mask": 2.8e-05})
    record_agreement(path, "faster_rcnn_R_50_FPN_3x", {"runtime": "onnxruntime", "matched_iou99": 1.0,
                                                       "box_px": 0.0002, "score": 1e-05, "mask": None})
    monkeypatch.setattr(d2tf.zoo_table, "AGREEMENT", str(path))
    assert row("Cityscapes/mask_rcnn_R_50_FPN.yaml")[3] == (
        "TensorFlow: 100% matched at IoU >= 0.99; boxes 0.00031 px, scores 9.3e-06, masks 2.8e-05")
    assert row("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")[3] == (
        "onnxruntime: 100% matched at IoU >= 0.99; boxes 0.0002 px, scores 1e-05")
    assert row("COCO-Detection/faster_rcnn_R_101_FPN_3x.yaml")[3] == "not recorded"
    record_agreement(path, "semantic_R_50_FPN_1x", {"runtime": "TensorFlow", "matched_iou99": None, "box_px": 0.0,
                                                    "score": 0.0, "mask": None, "sem_seg": 1.2e-05,
                                                    "sem_seg_argmax": 0.999988})
    assert row("Misc/semantic_R_50_FPN_1x.yaml")[3] == (
        "TensorFlow: semantic logits 1.2e-05, argmax equal on 99.9988% of pixels")
    record_agreement(path, "keypoint_rcnn_R_50_FPN_3x", {"runtime": "TensorFlow", "matched_iou99": 1.0,
                                                         "box_px": 0.0003, "score": 3e-05, "mask": None,
                                                         "keypoint_px": 0.0002, "keypoint_score": 8e-06,
                                                         "keypoints_moved": 1})
    assert row("COCO-Keypoints/keypoint_rcnn_R_50_FPN_1x.yaml")[3] == (
        "TensorFlow: 100% matched at IoU >= 0.99; boxes 0.0003 px, scores 3e-05; keypoints 0.0002 px (1 moved by "
        "argmax ties), their scores 8e-06")
