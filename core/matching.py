"""Comparing two detection sets by matching, not by index: near-equal scores can swap places between runtimes."""

import dataclasses

import numpy as np


def iou_matrix(a, b):
    """Pairwise IoU of boxes a [N, 4] and b [M, 4] (x1, y1, x2, y2)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclasses.dataclass
class Match:
    """Pairs (i in reference, j in candidate) with equal labels, greedily by reference score and IoU."""

    pairs: np.ndarray  # [K, 2]
    num_reference: int
    num_candidate: int
    max_box_diff: float
    max_score_diff: float

    @property
    def all_matched(self):
        return len(self.pairs) == self.num_reference == self.num_candidate

    @property
    def agreement(self):
        return len(self.pairs) / max(self.num_reference, self.num_candidate, 1)


def match_detections(ref, cand, iou_threshold=0.9):
    """ref/cand: dicts with boxes [N,4], scores [N], classes [N]. Each reference detection, best score first, takes
    the unmatched candidate of the same class with the highest IoU (at least iou_threshold)."""
    iou = iou_matrix(ref["boxes"], cand["boxes"])
    same = np.asarray(ref["classes"])[:, None] == np.asarray(cand["classes"])[None, :]
    iou = np.where(same, iou, -1.0)
    taken = np.zeros(iou.shape[1], bool)
    pairs = []
    for i in np.argsort(-np.asarray(ref["scores"]), kind="stable"):
        if iou.shape[1] == 0:
            break
        j = int(np.argmax(np.where(taken, -1.0, iou[i])))
        if not taken[j] and iou[i, j] >= iou_threshold:
            taken[j] = True
            pairs.append((int(i), j))
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    box_diff = np.abs(np.asarray(ref["boxes"])[pairs[:, 0]] - np.asarray(cand["boxes"])[pairs[:, 1]])
    score_diff = np.abs(np.asarray(ref["scores"])[pairs[:, 0]] - np.asarray(cand["scores"])[pairs[:, 1]])
    return Match(
        pairs=pairs,
        num_reference=len(ref["scores"]),
        num_candidate=len(cand["scores"]),
        max_box_diff=float(box_diff.max(initial=0.0)),
        max_score_diff=float(score_diff.max(initial=0.0)),
    )
