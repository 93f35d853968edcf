"""How far a converted model's outputs are from a reference's: matched per-stage differences of detections (an
RPN's proposals compare as detections) and of semantic logits, whether they are within the exact tolerance, and
pycocotools' box AP taking the reference's detections as ground truth ("agreement AP": 1.0 means the same
detections)."""

import contextlib
import dataclasses
import io

import numpy as np

from core.contract import LOWERED_SCORE_THRESHOLD, as_detections, has_detections, proposals_as_detections
from core.matching import iou_matrix, match_detections

# "Exact": two runtimes of the same computation, float round-off apart. Every detection matched at IoU >= STRICT_IOU,
# and the matched detections' largest differences within the tolerance: NOISE_MULTIPLE times the model's own noise
# (noise_tolerance), at least EXACT (the tolerances the stage tests assert).
STRICT_IOU = 0.99
# px, absolute, absolute, absolute logits, px (keypoint x and y), absolute, absolute logits (a two-stage detector's
# RPN: what its near-ties are judged by, not gated)
EXACT = {"box": 0.05, "score": 1e-4, "mask": 1e-4, "sem_seg": 1e-4, "keypoint": 0.05, "keypoint_score": 1e-4,
         "objectness": 1e-4}
# How far a stage may be from the one before it, in multiples of how far detectron2 is from itself (its outputs with
# oneDNN's convolutions against PyTorch's native ones: two valid float32 evaluations). A stage is one runtime's
# round-off against another's, as that spread is; a translation error (a RoIAlign offset, a swapped channel) moves
# boxes by tenths of a pixel and scores by 1e-2, orders of magnitude more.
NOISE_MULTIPLE = 10
# Semantic logits beyond EXACT["sem_seg"] still pass when the per-pixel argmax is equal on this share of pixels.
SEM_SEG_ARGMAX = 0.9999
# A keypoint is its heatmap's argmax: where two pixels are nearly tied, float round-off upstream (features, not the
# resize) may pick the other, a pixel or more away, at an equal score. At most this share of keypoints may move so,
# each with its score within EXACT["keypoint_score"] (a wrong resize or decoding moves most of them).
KEYPOINT_TIES = 0.01


@dataclasses.dataclass(frozen=True)
class KeptSet:
    """How the model decides which detections it keeps, each None where it does not decide so: the score threshold,
    the NMS IoU threshold (per class) and the detections-per-image cap. Float round-off flips these decisions for
    near-equal values, so a detection kept by one runtime only is explained (`at_the_edge`) when it is
    - one of an NMS near-tie: two same-class detections, each kept on one side only, scores within the score
      tolerance of each other and overlapping by more than the NMS threshold, so NMS keeps whichever it visits first;
    - kept at the NMS threshold: on its side, a better-scored detection of its class overlaps it at an IoU within
      NMS_IOU_TIE of the NMS threshold, so round-off of the boxes decides whether NMS suppresses it;
    - at the cap: its image holds `cap` detections on its side and its score is within the score tolerance of the
      lowest;
    - at the threshold: its score is within the score tolerance of `score_thresh`;
    - after a proposal tie (`proposals`, the KeptSet of a two-stage detector's RPN): it overlaps a proposal that one
      runtime's RPN kept and the other's not, itself so explained (objectness for scores; the RPN's own decisions,
      its NMS and its post-NMS top-k). Such a proposal gives the ROI heads a box the other side lacks, and all that
      follows from it differs: its detections and those they suppress.
    The RPN's pre-NMS top-k per FPN level explains nothing: the outputs do not say a proposal's level."""

    score_thresh: float = None
    nms_thresh: float = None
    cap: int = None
    proposals: "KeptSet" = None


# An IoU this close to the NMS threshold is a tie: boxes round-off apart (the 0.05 px floor on a 40 px box) overlap
# a few 1e-3 more or less.
NMS_IOU_TIE = 2e-3


def kept_set(info, lowered=False):
    """The KeptSet of a model info's test settings, `lowered`: with the score threshold verify runs the stages with
    (core.contract.LOWERED_SCORE_THRESHOLD); None for a model whose outputs are not NMS'ed detections of classes (an
    RPN's proposals are NMS'ed per FPN level, which the outputs do not say: a two-stage detector's explain its
    detections, not themselves)."""
    test = info.test
    if test.score_thresh is None:
        return None
    proposals = KeptSet(nms_thresh=test.rpn_nms_thresh, cap=test.rpn_post_nms_topk) \
        if "proposals" in info.outputs else None
    return KeptSet(LOWERED_SCORE_THRESHOLD if lowered else test.score_thresh, test.nms_thresh,
                   test.detections_per_image, proposals)


def detections_per_image(outputs, threshold=None):
    """{image key: detections (an RPN's proposals), or those scored above `threshold`} of one runtime's outputs;
    None for an image of a model that detects nothing by design (a semantic FPN)."""
    return {key: int(np.sum(as_detections(image)["scores"] > (-np.inf if threshold is None else threshold)))
            if has_detections(image) else None for key, image in outputs.items()}


def noise_tolerance(noise):
    """The tolerance of each compared quantity: NOISE_MULTIPLE times its difference in `noise` (a measure() row of
    detectron2 against itself), at least EXACT's."""
    return {key: max(floor, NOISE_MULTIPLE * (noise.get(key) or 0.0)) for key, floor in EXACT.items()}


def stated_tolerance(tolerance=EXACT):
    """The tolerances as report.md states them (its figures' `tolerance`): the match IoU, then each quantity's."""
    return {"iou": STRICT_IOU, **tolerance}


def measure(reference, candidate, kept=None, threshold=None, tolerance=EXACT):
    """compare() at IoU 0.9, plus how many detections match at STRICT_IOU, how many of the others `kept` (a
    KeptSet) explains as at the edge of the kept set, and, given the model's score `threshold`, how many matched
    ones are on different sides of it (threshold_flips); both with scores `tolerance`["score"] apart as round-off.
    The row keeps the `tolerance` inexact() holds it to."""
    row = compare(reference, candidate, tolerance=tolerance)
    strict = compare(reference, candidate, STRICT_IOU, kept, threshold, tolerance)
    row["strict_matched"], row["strict_agreement"] = strict["matched"], strict["agreement"]
    for key in ("at_the_edge", "after_proposal_ties", "threshold_flips", "objectness", "proposals_alone",
                "proposals_swapped"):
        row[key] = strict[key]
    row["tolerance"] = dict(tolerance)
    return row


def inexact(row):
    """What keeps a measure() row from being exact (within its tolerance), one phrase each; [] when it is exact."""
    problems, tolerance = [], row["tolerance"]
    if row["sem_seg"] is not None and row["sem_seg"] > tolerance["sem_seg"] and row["sem_seg_argmax"] < SEM_SEG_ARGMAX:
        problems.append(f"max sem_seg logit diff {row['sem_seg']:.3g} > {tolerance['sem_seg']:.3g} and the argmax "
                        f"equal on {row['sem_seg_argmax']:.4%} of pixels < {SEM_SEG_ARGMAX:.2%}")
    if not row["detections"]:
        return problems
    if row["reference"] == row["candidate"] == 0:
        return ["no detections on either side, so it checked nothing"]
    unmatched = row["reference"] + row["candidate"] - 2 * row["strict_matched"]
    if unmatched > row.get("at_the_edge", 0):
        edge = f", {row['at_the_edge']} of the others at the edge of the kept set" if row.get("at_the_edge") else ""
        swaps = (row.get("proposals_alone") or 0) - (row.get("proposals_swapped") or 0)
        edge += f", {swaps} proposals kept on one side that no RPN near-tie explains" if swaps else ""
        problems.append(f"{row['strict_matched']} of {max(row['candidate'], row['reference'])} detections matched "
                        f"at IoU >= {STRICT_IOU} ({row['candidate']} vs {row['reference']}{edge}), not all")
    if row.get("threshold_flips"):
        problems.append(f"{row['threshold_flips']} matched detections on different sides of the score threshold, "
                        f"each farther than {tolerance['score']:.3g} from it")
    if row["keypoints_moved"] and row["keypoints_moved"] > KEYPOINT_TIES * row["keypoints_compared"]:
        problems.append(f"{row['keypoints_moved']} of {row['keypoints_compared']} keypoints moved more than "
                        f"{tolerance['keypoint']:.3g} px, above the {KEYPOINT_TIES:.0%} that argmax ties may move")
    for key, unit in (("box", " px"), ("score", ""), ("mask", ""), ("keypoint", " px"), ("keypoint_score", "")):
        if row[key] is not None and row[key] > tolerance[key]:
            problems.append(f"max {key} diff {row[key]:.3g}{unit} > {tolerance[key]:.3g}{unit}")
    return problems


def compare(reference, candidate, iou_threshold=0.9, kept=None, threshold=None, tolerance=EXACT):
    """Differences over images ({key: outputs} each, classes 0-based), detections matched by label and IoU, how
    many unmatched ones `kept` (a KeptSet) explains (at_the_edge, after_proposal_ties of them through a two-stage
    detector's proposals) and how many matched ones a score `threshold` puts on different sides (threshold_flips),
    scores `tolerance`["score"] apart counting as round-off; sem_seg: the largest logit difference and the least
    share of pixels whose argmax is equal; given the RPN's KeptSet (kept.proposals), a two-stage detector's
    proposals matched at STRICT_IOU: the largest objectness difference of matched ones, how many one side kept
    alone (proposals_alone) and how many of those the RPN's KeptSet explains (proposals_swapped)."""
    score_tolerance = tolerance["score"]
    totals = dict(detections=False, reference=0, candidate=0, matched=0, at_the_edge=0, after_proposal_ties=0,
                  threshold_flips=0, box=0.0, score=0.0, mask=None, sem_seg=None, sem_seg_argmax=None, keypoint=None,
                  keypoint_score=None, keypoints_moved=None, keypoints_compared=None, keypoints_regridded=None,
                  objectness=None, proposals_alone=None, proposals_swapped=None)
    for key, ref in reference.items():
        cand = candidate[key]
        if "sem_seg" in ref:
            diff, argmax = _sem_seg_diff(ref["sem_seg"], cand["sem_seg"])
            totals["sem_seg"] = max(totals["sem_seg"] or 0.0, diff)
            totals["sem_seg_argmax"] = min(totals["sem_seg_argmax"] or 1.0, argmax)
        if not has_detections(ref):
            continue
        totals["detections"] = True
        swapped = None
        if kept and kept.proposals and "proposals" in ref and "proposals" in cand:  # a two-stage detector's
            swapped, alone, objectness = swapped_proposals(ref, cand, kept.proposals, tolerance["objectness"])
            totals["objectness"] = max(totals["objectness"] or 0.0, objectness)
            totals["proposals_alone"] = (totals["proposals_alone"] or 0) + alone
            totals["proposals_swapped"] = (totals["proposals_swapped"] or 0) + len(swapped)
        ref, cand = as_detections(ref), as_detections(cand)
        match = match_detections(ref, cand, iou_threshold)
        totals["reference"] += match.num_reference
        totals["candidate"] += match.num_candidate
        totals["matched"] += len(match.pairs)
        if kept:
            edge = at_the_edge(ref, cand, match.pairs, kept, score_tolerance)
            after = edge if swapped is None or not len(swapped) else \
                at_the_edge(ref, cand, match.pairs, kept, score_tolerance, swapped)
            totals["at_the_edge"] += after
            totals["after_proposal_ties"] += after - edge
        if threshold is not None:
            totals["threshold_flips"] += threshold_flips(ref, cand, match.pairs, threshold, score_tolerance)
        totals["box"] = max(totals["box"], match.max_box_diff)
        totals["score"] = max(totals["score"], match.max_score_diff)
        if "masks" in ref and "masks" in cand:
            diff = np.abs(ref["masks"][match.pairs[:, 0]] - cand["masks"][match.pairs[:, 1]]).max(initial=0.0)
            totals["mask"] = max(totals["mask"] or 0.0, float(diff))
        if "keypoints" in ref and "keypoints" in cand:
            _add_keypoint_diffs(totals, ref, cand, match.pairs, tolerance["keypoint"])
    totals["agreement"] = totals["matched"] / max(totals["reference"], totals["candidate"], 1)
    return totals


def at_the_edge(ref, cand, pairs, kept, score_tolerance=EXACT["score"], swapped=None):
    """How many detections of one image that `pairs` leaves unmatched the KeptSet `kept` explains (KeptSet's
    docstring, scores `score_tolerance` apart counting as round-off): first NMS near-ties, pairing each unmatched
    reference detection, best score first, with the unmatched candidate one it overlaps most; then, on either side,
    detections kept at the NMS threshold, at the cap and at the score threshold, and those overlapping any of the
    `swapped` proposals' boxes [K, 4] (swapped_proposals)."""
    return sum(len(indices) for indices in _explained(ref, cand, pairs, kept, score_tolerance, swapped))


def swapped_proposals(ref, cand, kept, objectness_tolerance=EXACT["objectness"]):
    """(boxes [K, 4], n, d) of two outputs of a two-stage detector: n proposals are kept by one side's RPN alone
    (not matched at STRICT_IOU), and K of them, whose boxes these are, `kept` (the RPN's KeptSet) explains,
    objectness logits `objectness_tolerance` apart counting as round-off; d: the largest objectness difference of
    the matched ones."""
    rpn = [proposals_as_detections(side) for side in (ref, cand)]
    match = match_detections(*rpn, STRICT_IOU)
    explained = _explained(*rpn, match.pairs, kept, objectness_tolerance)
    boxes = [np.asarray(side["boxes"], np.float64).reshape(-1, 4)[index] for side, index in zip(rpn, explained)]
    alone = match.num_reference + match.num_candidate - 2 * len(match.pairs)
    return np.concatenate(boxes), alone, match.max_score_diff


def _explained(ref, cand, pairs, kept, score_tolerance, swapped=None):
    """[reference indices, candidate indices] of the detections `pairs` leaves unmatched that at_the_edge
    explains."""
    sides = [{key: np.asarray(side[key]) for key in ("boxes", "scores", "classes")} for side in (ref, cand)]
    alone = [np.setdiff1d(np.arange(len(side["scores"])), pairs[:, column]) for column, side in enumerate(sides)]
    tied = _nms_near_ties(*(({key: value[a] for key, value in side.items()}) for side, a in zip(sides, alone)),
                          kept.nms_thresh, score_tolerance) if kept.nms_thresh is not None else ([], [])
    explained = []
    for side, indices, paired in zip(sides, alone, tied):
        rest = np.delete(indices, paired)
        scores = side["scores"][rest]
        edge = np.zeros(len(rest), bool)
        if kept.nms_thresh is not None:
            edge |= _kept_at_the_nms_threshold(side, rest, kept.nms_thresh)
        if kept.cap is not None and len(side["scores"]) == kept.cap:
            edge |= np.abs(scores - side["scores"].min()) <= score_tolerance
        if kept.score_thresh is not None:
            edge |= np.abs(scores - kept.score_thresh) <= score_tolerance
        if swapped is not None and len(swapped):
            edge |= iou_matrix(side["boxes"][rest], swapped).max(axis=1, initial=0.0) > 0
        explained.append(np.concatenate([indices[paired], rest[edge]]).astype(np.int64))
    return explained


def threshold_flips(ref, cand, pairs, threshold, score_tolerance=EXACT["score"]):
    """How many matched detections (`pairs` of indices into ref and cand) `threshold` keeps on one side only while
    both scores are farther than `score_tolerance` from it: the model's own threshold, checked on scores the stages
    computed with it lowered (where round-off decides, within the tolerance, either side is right)."""
    scores = [np.asarray(side["scores"])[pairs[:, column]] for column, side in enumerate((ref, cand))]
    away = (np.abs(scores[0] - threshold) > score_tolerance) & (np.abs(scores[1] - threshold) > score_tolerance)
    return int(np.sum(((scores[0] > threshold) != (scores[1] > threshold)) & away))


def _kept_at_the_nms_threshold(side, indices, nms_thresh):
    """For each detection `indices` of one side: whether a better-scored detection of its class on that side overlaps
    it at an IoU within NMS_IOU_TIE of `nms_thresh`."""
    overlap = iou_matrix(side["boxes"][indices], side["boxes"])
    better = (side["classes"][indices, None] == side["classes"][None, :]) \
        & (side["scores"][None, :] > side["scores"][indices, None])
    return np.any(better & (np.abs(overlap - nms_thresh) <= NMS_IOU_TIE), axis=1)


def _nms_near_ties(ref, cand, nms_thresh, score_tolerance):
    """([i], [j]): pairs of a reference and a candidate detection (indices into each) of one class, scores within
    `score_tolerance`, overlapping by more than `nms_thresh`: each reference one, best score first, takes the free
    candidate one it overlaps most."""
    overlap = iou_matrix(ref["boxes"], cand["boxes"])
    near = (np.abs(ref["scores"][:, None] - cand["scores"][None, :]) <= score_tolerance) \
        & (ref["classes"][:, None] == cand["classes"][None, :]) & (overlap > nms_thresh)
    paired = [], []
    for i in np.argsort(-ref["scores"], kind="stable"):
        free = near[i].copy()
        free[paired[1]] = False
        if free.any():
            paired[0].append(int(i))
            paired[1].append(int(np.argmax(np.where(free, overlap[i], -1.0))))
    return paired


def _add_keypoint_diffs(totals, ref, cand, pairs, within):
    """Matched instances' keypoints, into `totals`: the largest score difference, the number compared and of those
    that moved more than `within` px (to another pixel: argmax ties, KEYPOINT_TIES), and the largest x/y difference
    of the others.
    detectron2 resizes an instance's heatmaps to ceil(box width) x ceil(box height): where round-off moves a box side
    across an integer the two runtimes read different grids, so that instance is counted (keypoints_regridded), not
    compared."""
    same_grid = np.all(_grid(ref["boxes"][pairs[:, 0]]) == _grid(cand["boxes"][pairs[:, 1]]), axis=1)
    pairs = pairs[same_grid]
    diff = np.abs(ref["keypoints"][pairs[:, 0]] - cand["keypoints"][pairs[:, 1]])
    distance = diff[..., :2].max(-1)
    moved = distance > within
    totals["keypoint"] = max(totals["keypoint"] or 0.0, float(distance[~moved].max(initial=0.0)))
    totals["keypoint_score"] = max(totals["keypoint_score"] or 0.0, float(diff[..., 2].max(initial=0.0)))
    for key, count in (("keypoints_moved", moved.sum()), ("keypoints_compared", moved.size),
                       ("keypoints_regridded", (~same_grid).sum())):
        totals[key] = (totals[key] or 0) + int(count)


def _grid(boxes):
    """[N, 2] of the heatmap grid detectron2 resizes each box's keypoints to: ceil of its sides, at least 1."""
    sides = np.asarray(boxes, np.float32)[:, 2:] - np.asarray(boxes, np.float32)[:, :2]
    return np.ceil(np.maximum(sides, np.float32(1)))


def _sem_seg_diff(reference, candidate):
    """(largest absolute difference, share of pixels with the same argmax) of two [C, H, W] logits."""
    if reference.shape != candidate.shape:
        return float("inf"), 0.0
    diff = float(np.abs(reference - candidate).max(initial=0.0))
    return diff, float(np.mean(reference.argmax(0) == candidate.argmax(0)))


def mask_iou(reference, candidate, iou_threshold=0.5):
    """The mean IoU of the masks (probabilities on each box's grid, taken above 0.5) of the detections matched at
    `iou_threshold` over images ({key: outputs}); None where no matched pair has masks."""
    ious = []
    for key, ref in reference.items():
        cand = candidate[key]
        if "masks" not in ref or "masks" not in cand:
            continue
        for i, j in match_detections(ref, cand, iou_threshold).pairs:
            a, b = ref["masks"][i] > 0.5, cand["masks"][j] > 0.5
            union = np.sum(a | b)
            ious.append(float(np.sum(a & b) / union) if union else 1.0)
    return float(np.mean(ious)) if ious else None


def agreement_ap(reference, candidate):
    """(AP, AP50) of `candidate` with `reference`'s detections as ground truth, or (None, None) if it has none."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    reference = {key: as_detections(image) for key, image in reference.items() if has_detections(image)}
    candidate = {key: as_detections(candidate[key]) for key in reference}
    images, annotations, results = [], [], []
    for image_id, key in enumerate(sorted(reference), start=1):
        images.append({"id": image_id})
        for box, cls in zip(reference[key]["boxes"], reference[key]["classes"]):
            annotations.append(_detection(image_id, box, cls, id=len(annotations) + 1, iscrowd=0))
        cand = candidate[key]
        results += [_detection(image_id, b, c, score=float(s)) for b, c, s in
                    zip(cand["boxes"], cand["classes"], cand["scores"])]
    if not annotations:
        return None, None
    if not results:
        return 0.0, 0.0
    classes = {int(c) for image in reference.values() for c in image["classes"]}
    classes |= {int(c) for image in candidate.values() for c in image["classes"]}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": c + 1} for c in sorted(classes)]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0]), float(evaluation.stats[1])


def _detection(image_id, box, cls, **fields):
    x1, y1, x2, y2 = (float(v) for v in box)
    return {"image_id": image_id, "category_id": int(cls) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
            "area": (x2 - x1) * (y2 - y1), **fields}
