"""verify/agreement.py's KeptSet: which detections kept by one runtime only are explained by round-off at the edge
of the kept set (an NMS near-tie, the detections-per-image cap, the score threshold, a proposal that a near-tie of
the RPN's decisions kept on one side only), on hand-built detection sets. Everything else unmatched must fail an
exact check."""

import numpy as np
import pytest

from core.model_info import TestSettings
from tests.model_infos import model_info
from verify.agreement import KeptSet, at_the_edge, inexact, kept_set, measure, swapped_proposals

KEPT = KeptSet(score_thresh=0.05, nms_thresh=0.5, cap=4)
# Two same-class boxes overlapping at IoU 0.6 (20x10 boxes shifted by 5 px): NMS at 0.5 keeps one of them.
A, B = [0, 0, 20, 10], [5, 0, 25, 10]
FAR = [[100, 100, 120, 110], [200, 100, 220, 110], [300, 100, 320, 110]]


def image(boxes, scores, classes):
    return {"boxes": np.float32(boxes).reshape(-1, 4), "scores": np.float32(scores), "classes": np.int64(classes)}


def row(reference, candidate, kept=KEPT):
    return measure({"image": reference}, {"image": candidate}, kept)


def test_one_of_an_nms_near_tie_kept_by_each_side_is_at_the_edge():
    reference, candidate = image([A], [0.9], [1]), image([B], [0.90005], [1])
    figures = row(reference, candidate)
    assert (figures["strict_matched"], figures["at_the_edge"]) == (0, 2) and inexact(figures) == []


def test_what_is_no_near_tie_fails():
    for why, candidate in [
        ("scores 1e-3 apart: NMS's order is no tie", image([B], [0.901], [1])),
        ("another class: NMS does not compare them", image([B], [0.9], [2])),
        ("IoU 0.33 < 0.5: NMS keeps both", image([[10, 0, 30, 10]], [0.9], [1])),
    ]:
        figures = row(image([A], [0.9], [1]), candidate)
        assert figures["at_the_edge"] == 0, why
        assert inexact(figures) == ["0 of 1 detections matched at IoU >= 0.99 (1 vs 1), not all"], why


def test_a_near_tie_pairs_each_detection_once():
    # two reference detections tie with the one candidate detection: one pair, the other reference one unexplained
    reference, candidate = image([A, [0, 1, 20, 11]], [0.9, 0.9], [1, 1]), image([B], [0.9], [1])
    figures = row(reference, candidate)
    assert figures["at_the_edge"] == 2
    assert inexact(figures) == ["0 of 2 detections matched at IoU >= 0.99 (1 vs 2, 2 of the others at the edge of "
                                "the kept set), not all"]


def test_the_last_detections_at_the_cap_may_differ():
    # both at the cap of 4: the fourth detections are different ones of near-equal scores (0.3 and 0.30008)
    reference = image([*FAR, A], [0.9, 0.8, 0.7, 0.3], [1, 1, 1, 1])
    candidate = image([*FAR, [400, 0, 420, 10]], [0.9, 0.8, 0.7, 0.30008], [1, 1, 1, 2])
    figures = row(reference, candidate)
    assert (figures["strict_matched"], figures["at_the_edge"]) == (3, 2) and inexact(figures) == []
    # below the cap, nothing was cut: the same difference fails
    figures = row(reference, candidate, KeptSet(0.05, 0.5, cap=5))
    assert figures["at_the_edge"] == 0 and inexact(figures) != []
    # at the cap, but not the last score: 0.3 against a lowest of 0.29
    lower = image([*FAR, A, [500, 0, 520, 10]], [0.9, 0.8, 0.7, 0.3, 0.29], [1, 1, 1, 1, 1])
    figures = row(lower, image([*FAR, [500, 0, 520, 10]], [0.9, 0.8, 0.7, 0.29], [1, 1, 1, 1]), KeptSet(cap=5))
    assert (figures["strict_matched"], figures["at_the_edge"]) == (4, 0)


def test_a_score_at_the_threshold_may_be_missing_on_one_side():
    reference = image([FAR[0], A], [0.9, 0.05004], [1, 1])
    figures = row(reference, image([FAR[0]], [0.9], [1]))
    assert (figures["strict_matched"], figures["at_the_edge"]) == (1, 1) and inexact(figures) == []
    reference["scores"][1] = 0.0502
    assert inexact(row(reference, image([FAR[0]], [0.9], [1]))) == [
        "1 of 2 detections matched at IoU >= 0.99 (1 vs 2), not all"]


def test_without_a_kept_set_every_detection_must_match():
    figures = row(image([A], [0.9], [1]), image([B], [0.9], [1]), kept=None)
    assert figures["at_the_edge"] == 0 and inexact(figures) != []


def test_at_the_edge_counts_only_what_the_pairs_leave_unmatched():
    reference = image([A, FAR[0]], [0.9, 0.05], [1, 1])
    assert at_the_edge(reference, reference, np.int64([[0, 0], [1, 1]]), KEPT) == 0
    assert at_the_edge(reference, reference, np.int64([[0, 0]]), KEPT) == 2  # FAR[0] at the threshold on both sides


def test_the_kept_set_of_a_model_info():
    rcnn = TestSettings(score_thresh=0.05, nms_thresh=0.5, detections_per_image=100, rpn_post_nms_topk=1000,
                        rpn_nms_thresh=0.7)
    assert kept_set(model_info(test=rcnn)) == KeptSet(0.05, 0.5, 100, KeptSet(nms_thresh=0.7, cap=1000))
    retinanet = model_info(test=rcnn, outputs=["boxes", "scores", "classes"])  # no RPN
    assert kept_set(retinanet) == KeptSet(0.05, 0.5, 100)
    rpn = TestSettings(rpn_pre_nms_topk=1000, rpn_post_nms_topk=1000, rpn_nms_thresh=0.7)
    assert kept_set(model_info(test=rpn)) is None
    assert kept_set(model_info(test=TestSettings())) is None  # a semantic FPN


# The stages run with the score threshold lowered; the model's own threshold is then checked on the matched scores.
def test_a_matched_detection_on_the_other_side_of_the_threshold_fails():
    """Scores 0.3 and 0.2 straddle the threshold 0.25, each 0.05 from it: a wrong threshold decision (a score that
    far off fails on its own too, so the matched pair is built with its scores apart)."""
    reference, candidate = image(FAR[:2], [0.9, 0.3], [1, 1]), image(FAR[:2], [0.9, 0.2], [1, 1])
    figures = measure({"image": reference}, {"image": candidate}, KEPT, threshold=0.25)
    assert figures["threshold_flips"] == 1
    assert "1 matched detections on different sides of the score threshold, each farther than 0.0001 from it" in \
        inexact(figures)


def test_scores_within_the_tolerance_of_the_threshold_may_fall_either_side():
    """0.25004 and 0.24997: 4e-5 and 3e-5 from the threshold 0.25, where round-off decides."""
    reference, candidate = image(FAR[:1], [0.25004], [1]), image(FAR[:1], [0.24997], [1])
    figures = measure({"image": reference}, {"image": candidate}, KEPT, threshold=0.25)
    assert figures["threshold_flips"] == 0 and inexact(figures) == []


def test_the_lowered_kept_set_keeps_the_models_nms_and_cap():
    info = model_info(test=TestSettings(score_thresh=0.7, nms_thresh=0.4, detections_per_image=30,
                                        rpn_nms_thresh=0.6, rpn_post_nms_topk=50))
    assert kept_set(info, lowered=True) == KeptSet(0.0, 0.4, 30, KeptSet(nms_thresh=0.6, cap=50))
    assert kept_set(info) == KeptSet(0.7, 0.4, 30, KeptSet(nms_thresh=0.6, cap=50))


# A two-stage detector's proposals: its RPN's NMS at 0.7 and its post-NMS top 3. P and Q overlap at IoU 190 / 210 =
# 0.905, below the match's 0.99 and above the RPN's NMS threshold: the RPN keeps one of them. D, a detection that
# overlaps both, is a box the ROI heads made from one of them; FAR[2], one that overlaps neither.
TWO_STAGE = KeptSet(score_thresh=0.05, nms_thresh=0.5, cap=4, proposals=KeptSet(nms_thresh=0.7, cap=3))
P, Q, D = [0, 0, 20, 10], [1, 0, 21, 10], [2, 0, 22, 12]


def two_stage(detections, proposals, objectness):
    return {**detections, "proposals": np.float32(proposals).reshape(-1, 4), "objectness": np.float32(objectness)}


def detected(*boxes):
    """`boxes` of class 1, scored 0.9, 0.8, ...: far from the threshold, from each other and from the cap."""
    return image(boxes, [0.9 - 0.1 * i for i in range(len(boxes))], [1] * len(boxes))


def test_a_detection_after_a_proposal_the_rpns_near_tie_kept_on_one_side_only_is_at_the_edge():
    reference = two_stage(detected(FAR[0], D), [FAR[0], P], [5.0, 2.0])
    candidate = two_stage(detected(FAR[0]), [FAR[0], Q], [5.00002, 2.00005])
    figures = row(reference, candidate, TWO_STAGE)
    assert (figures["strict_matched"], figures["at_the_edge"], figures["after_proposal_ties"]) == (1, 1, 1)
    assert (figures["proposals_alone"], figures["proposals_swapped"]) == (2, 2) and inexact(figures) == []
    assert figures["objectness"] == pytest.approx(2e-5, rel=0.05)  # the matched proposal's (FAR[0]), in float32


def test_a_proposal_kept_at_the_rpns_cap_explains_what_follows_from_it():
    # both RPNs at their cap of 3, the third proposal a different one of near-equal objectness (-1.0, -1.00004)
    reference = two_stage(detected(FAR[0], D), [FAR[0], FAR[1], P], [5.0, 4.0, -1.0])
    candidate = two_stage(detected(FAR[0]), [FAR[0], FAR[1], FAR[2]], [5.0, 4.0, -1.00004])
    figures = row(reference, candidate, TWO_STAGE)
    assert (figures["at_the_edge"], figures["proposals_swapped"]) == (1, 2) and inexact(figures) == []


def test_what_no_rpn_near_tie_explains_fails():
    reference = two_stage(detected(FAR[0], D), [FAR[0], P], [5.0, 2.0])
    for why, candidate, kept in [
        ("objectness 1e-2 apart: the RPN's NMS order is no tie",
         two_stage(detected(FAR[0]), [FAR[0], Q], [5.0, 2.01]), TWO_STAGE),
        ("the same proposals on both sides: the difference is the ROI heads'",
         two_stage(detected(FAR[0]), [FAR[0], P], [5.0, 2.0]), TWO_STAGE),
        ("no RPN's kept set: its decisions are not analysed", two_stage(detected(FAR[0]), [FAR[0], Q], [5.0, 2.0]),
         KeptSet(0.05, 0.5, 4)),
    ]:
        figures = row(reference, candidate, kept)
        assert (figures["at_the_edge"], figures["after_proposal_ties"]) == (0, 0), why
        assert inexact(figures) != [], why
    figures = row(reference, two_stage(detected(FAR[0]), [FAR[0], Q], [5.0, 2.01]), TWO_STAGE)
    assert inexact(figures) == ["1 of 2 detections matched at IoU >= 0.99 (1 vs 2, 2 proposals kept on one side that "
                                "no RPN near-tie explains), not all"]


def test_a_proposal_tie_explains_only_the_detections_that_overlap_it():
    reference = two_stage(detected(FAR[0], D, FAR[2]), [FAR[0], P], [5.0, 2.0])
    candidate = two_stage(detected(FAR[0]), [FAR[0], Q], [5.0, 2.00005])
    figures = row(reference, candidate, TWO_STAGE)
    assert (figures["at_the_edge"], figures["after_proposal_ties"]) == (1, 1) and inexact(figures) != []


def test_swapped_proposals_are_the_explained_ones_of_either_side():
    reference = two_stage({}, [FAR[0], P, FAR[1]], [5.0, 2.0, 1.0])
    candidate = two_stage({}, [FAR[0], Q], [5.0, 2.00005])
    boxes, alone, objectness = swapped_proposals(reference, candidate, KeptSet(nms_thresh=0.7, cap=4))
    # FAR[1]: below the cap of 4 on its side, no tie: not explained; FAR[0]'s objectness matched exactly
    assert alone == 3 and boxes.tolist() == [P, Q] and objectness == 0.0


# A and C: 30x10 boxes 10 px apart, IoU 200 / 400 = 0.5, the NMS threshold of KEPT: round-off of a box decides whether
# NMS suppresses the lower-scored one.
C = [10, 0, 40, 10]


def test_a_detection_overlapping_a_better_one_at_the_nms_threshold_may_be_kept_on_one_side_only():
    reference = image([[0, 0, 30, 10], C], [0.9, 0.8], [1, 1])
    candidate = image([[0, 0, 30, 10]], [0.9], [1])
    figures = row(reference, candidate)
    assert (figures["strict_matched"], figures["at_the_edge"]) == (1, 1) and inexact(figures) == []


def test_what_is_not_kept_at_the_nms_threshold_fails():
    for why, reference in [
        ("IoU 1/3, 0.17 from the threshold", image([[0, 0, 30, 10], [15, 0, 45, 10]], [0.9, 0.8], [1, 1])),
        ("another class: NMS does not compare them", image([[0, 0, 30, 10], C], [0.9, 0.8], [1, 2])),
        ("the overlapping one scores lower: it cannot have suppressed it", image([[0, 0, 30, 10], C], [0.7, 0.8],
                                                                                  [1, 1])),
    ]:
        figures = row(reference, image([reference["boxes"][0]], [reference["scores"][0]], [reference["classes"][0]]))
        assert figures["at_the_edge"] == 0 and inexact(figures) != [], why
