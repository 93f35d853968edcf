"""tests/parity.assert_same_detections, the judge of every stage test, on hand-built detection sets: what it lets
through (float round-off, a swap at the score cut-off) and what it stops."""

import numpy as np
import pytest

from tests.parity import assert_same_detections

BOX, SCORE = 0.05, 1e-4  # the README's exact tolerances: boxes 0.05 px, scores 1e-4


def detections(boxes, scores, classes):
    return {"boxes": np.float32(boxes), "scores": np.float32(scores), "classes": np.int64(classes)}


# Three well-apart boxes, best first; the last is the lowest kept score.
REFERENCE = detections([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [0.9, 0.6, 0.3], [1, 2, 1])


def test_round_off_within_the_tolerances_passes():
    candidate = detections([[0.02, 0, 10, 10], [20, 0, 30.04, 10], [40, 0, 50, 10]], [0.90005, 0.6, 0.29992],
                           [1, 2, 1])
    match = assert_same_detections(REFERENCE, candidate, BOX, SCORE)
    assert sorted(map(tuple, match.pairs.tolist())) == [(0, 0), (1, 1), (2, 2)]


def test_order_does_not_matter():
    order = [2, 0, 1]
    candidate = {key: value[order] for key, value in REFERENCE.items()}
    assert sorted(map(tuple, assert_same_detections(REFERENCE, candidate, BOX, SCORE).pairs.tolist())) == \
        [(0, 1), (1, 2), (2, 0)]


def test_a_swap_at_the_cut_off_passes():
    """The last kept detection differs (another box, a score tied with the cut-off within SCORE): top-k's choice
    between near-equal scores, which float round-off may flip."""
    candidate = detections([[0, 0, 10, 10], [20, 0, 30, 10], [70, 0, 80, 10]], [0.9, 0.6, 0.30008], [1, 2, 1])
    match = assert_same_detections(REFERENCE, candidate, BOX, SCORE)
    assert len(match.pairs) == 2


@pytest.mark.parametrize("candidate, message", [
    (detections([[0, 0, 10, 10], [20, 0, 30, 10], [70, 0, 80, 10]], [0.9, 0.6, 0.3002], [1, 2, 1]),
     r"candidate detections \[2\] unmatched"),  # the swapped one scores 2e-4 above the cut-off
    (detections([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [0.9, 0.6, 0.3], [1, 1, 1]),
     r"reference detections \[1\] unmatched"),  # the right box with another class
    (detections([[0, 0, 10, 10], [40, 0, 50, 10], [40, 0, 50, 10]], [0.9, 0.6, 0.3], [1, 1, 1]),
     r"reference detections \[1\] unmatched"),  # two candidates compete for one reference box
    (detections([[0, 0, 10, 10], [20, 0, 30.0625, 10], [40, 0, 50, 10]], [0.9, 0.6, 0.3], [1, 2, 1]),
     r"box diff 0.0625 px"),  # matched: IoU 0.994
    (detections([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], [0.9, 0.6002, 0.3], [1, 2, 1]),
     r"score diff 0\.000(19|2)"),  # 2e-4 in float32
    (detections([[0, 0, 10, 10], [20, 0, 30, 10]], [0.9, 0.6], [1, 2]), "detection counts differ"),
], ids=["a swap above the cut-off", "wrong class", "two for one", "box beyond 0.05 px", "score beyond 1e-4",
        "one fewer"])
def test_what_it_stops(candidate, message):
    with pytest.raises(AssertionError, match=message):
        assert_same_detections(REFERENCE, candidate, BOX, SCORE)


def test_the_strict_iou_is_the_default():
    """A box 0.5 px off on a 10 px side (IoU 0.95) is no match at the default IoU 0.99; at 0.9 it is one."""
    candidate = detections([[0, 0, 10, 10], [20, 0, 30.5, 10], [40, 0, 50, 10]], [0.9, 0.6, 0.3], [1, 2, 1])
    with pytest.raises(AssertionError, match=r"reference detections \[1\] unmatched"):
        assert_same_detections(REFERENCE, candidate, 1.0, SCORE)
    assert len(assert_same_detections(REFERENCE, candidate, 1.0, SCORE, iou=0.9).pairs) == 3


def test_masks_are_compared_on_matched_pairs():
    masks = np.zeros((3, 4, 4), np.float32)
    reference = dict(REFERENCE, masks=masks)
    candidate = dict(REFERENCE, masks=masks + np.float32([0, 0, 2e-4])[:, None, None])
    with pytest.raises(AssertionError, match=r"mask diff 0\.000(19|2)"):
        assert_same_detections(reference, candidate, BOX, SCORE, mask_tol=1e-4)
    assert_same_detections(reference, dict(REFERENCE, masks=masks + np.float32(5e-5)), BOX, SCORE, mask_tol=1e-4)
