"""Asserting that two runtimes gave the same detections, matched by label and IoU (not by index), and the same
semantic logits."""

import numpy as np

from core.contract import as_detections, has_detections
from core.matching import match_detections
from verify.agreement import KEYPOINT_TIES, STRICT_IOU, compare


def assert_same_outputs(ref, cand, tolerance, min_detections=10):
    """The semantic logits within `tolerance`["sem_seg"], if the model has them; the outputs that compare as
    detections (an RPN's proposals too) as assert_same_detections checks them within `tolerance`'s box, score and
    mask limits, at least `min_detections` of them in `ref`; keypoints within its keypoint and keypoint_score ones
    ({quantity: limit}, as verify.agreement.EXACT)."""
    assert sorted(ref) == sorted(cand), "the same outputs"
    if "sem_seg" in ref:
        assert ref["sem_seg"].shape == cand["sem_seg"].shape
        diff = np.abs(ref["sem_seg"] - cand["sem_seg"]).max()
        assert diff <= tolerance["sem_seg"], f"sem_seg diff {diff}"
    if has_detections(ref):
        ref, cand = as_detections(ref), as_detections(cand)
        assert len(ref["scores"]) >= min_detections, "a test without detections compares nothing"
        assert_same_detections(ref, cand, tolerance["box"], tolerance["score"],
                               tolerance["mask"] if "masks" in ref else None)
    if "keypoints" in ref:  # matched instances on the same heatmap grid (verify.agreement)
        row = compare({"image": ref}, {"image": cand})
        assert row["keypoint"] <= tolerance["keypoint"] and row["keypoint_score"] <= tolerance["keypoint_score"], row
        assert row["keypoints_moved"] <= KEYPOINT_TIES * row["keypoints_compared"], row


def assert_same_detections(ref, cand, box_tol, score_tol, mask_tol=None, iou=STRICT_IOU):
    """Same count; every detection matched (same class, IoU >= iou: by default verify's 0.99 for exact comparisons)
    within the tolerances. The one allowed
    exception: detections tied with the last kept score (within score_tol) may swap at the top-k cut-off."""
    assert len(ref["scores"]) == len(cand["scores"]), "detection counts differ"
    match = match_detections(ref, cand, iou)
    cutoff = min(ref["scores"].min(initial=np.inf), cand["scores"].min(initial=np.inf)) + score_tol
    for name, dets, matched in (("reference", ref, match.pairs[:, 0]), ("candidate", cand, match.pairs[:, 1])):
        unmatched = np.setdiff1d(np.arange(len(dets["scores"])), matched)
        assert (dets["scores"][unmatched] <= cutoff).all(), f"{name} detections {unmatched.tolist()} unmatched"
    assert match.max_box_diff <= box_tol, f"box diff {match.max_box_diff} px"
    assert match.max_score_diff <= score_tol, f"score diff {match.max_score_diff}"
    if mask_tol is not None and len(match.pairs):
        mask_diff = np.abs(ref["masks"][match.pairs[:, 0]] - cand["masks"][match.pairs[:, 1]]).max()
        assert mask_diff <= mask_tol, f"mask diff {mask_diff}"
    return match

