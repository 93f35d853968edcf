"""core/matching.py, which every comparison of detections goes through (verify's gates, the stage tests), on
hand-computed cases: IoU, labels, competing boxes, the greedy order, empty sides, the threshold's edge."""

import numpy as np
import pytest

from core.matching import iou_matrix, match_detections

# 20x10 boxes: B is A shifted right by 5 px (IoU 150 / 250 = 0.6), C by 10 px (100 / 300), E by 25 px (5 px apart),
# D far away.
A, B, C, D, E = [0, 0, 20, 10], [5, 0, 25, 10], [10, 0, 30, 10], [100, 100, 120, 110], [25, 0, 45, 10]


def detections(boxes, scores, classes):
    return {"boxes": np.float32(boxes).reshape(-1, 4), "scores": np.float32(scores), "classes": np.int64(classes)}


def test_iou_of_hand_computed_pairs():
    np.testing.assert_allclose(iou_matrix([A, A], [A, B, C, D, E]), [[1, 0.6, 1 / 3, 0, 0]] * 2)
    assert iou_matrix([[5, 5, 5, 9]], [[5, 5, 5, 9]])[0, 0] == 0, "a box without area overlaps nothing"
    assert iou_matrix(np.zeros((0, 4)), [A]).shape == (0, 1)


def test_a_detection_of_another_class_is_not_matched_however_it_overlaps():
    match = match_detections(detections([A], [0.9], [1]), detections([A], [0.9], [2]))
    assert match.pairs.tolist() == [] and not match.all_matched and match.agreement == 0


def test_of_two_candidates_the_one_overlapping_most_is_taken():
    match = match_detections(detections([A], [0.9], [1]), detections([C, B, [1, 0, 21, 10]], [0.9, 0.8, 0.7], [1] * 3),
                             iou_threshold=0.3)
    assert match.pairs.tolist() == [[0, 2]]  # [1, 0, 21, 10]: IoU 190 / 210


def test_a_candidate_taken_is_not_taken_again():
    # both references overlap X most; the first takes it, the second its next best, B (IoU 160 / 240)
    reference = detections([A, [1, 0, 21, 10]], [0.9, 0.8], [1, 1])
    match = match_detections(reference, detections([A, B], [0.9, 0.8], [1, 1]), iou_threshold=0.5)
    assert match.pairs.tolist() == [[0, 0], [1, 1]] and match.all_matched


def test_reference_detections_choose_in_order_of_their_score():
    # both references overlap the one candidate B; the better-scored A takes it although C overlaps it as much
    reference = detections([C, A], [0.5, 0.9], [1, 1])
    match = match_detections(reference, detections([B], [0.9], [1]), iou_threshold=0.5)
    assert match.pairs.tolist() == [[1, 0]]
    assert (match.num_reference, match.num_candidate, match.agreement) == (2, 1, 0.5)


def test_the_threshold_is_inclusive_and_below_it_nothing_matches():
    reference, candidate = detections([A], [0.9], [1]), detections([B], [0.9], [1])
    assert match_detections(reference, candidate, iou_threshold=0.6).pairs.tolist() == [[0, 0]]
    assert match_detections(reference, candidate, iou_threshold=0.61).pairs.tolist() == []


def test_differences_are_those_of_matched_pairs_only():
    reference = detections([A, D], [0.9, 0.8], [1, 1])
    candidate = detections([[0.25, 0, 20, 10], [300, 300, 310, 310]], [0.85, 0.1], [1, 1])
    match = match_detections(reference, candidate)
    assert match.pairs.tolist() == [[0, 0]]
    assert match.max_box_diff == 0.25 and match.max_score_diff == pytest.approx(0.05)


@pytest.mark.parametrize("reference, candidate", [([], [A]), ([A], []), ([], [])])
def test_an_empty_side_matches_nothing(reference, candidate):
    match = match_detections(detections(reference, [0.9] * len(reference), [1] * len(reference)),
                             detections(candidate, [0.9] * len(candidate), [1] * len(candidate)))
    assert match.pairs.shape == (0, 2) and (match.num_reference, match.num_candidate) == (len(reference),
                                                                                          len(candidate))
    assert match.max_box_diff == match.max_score_diff == 0.0
    assert match.all_matched == (not reference and not candidate)
