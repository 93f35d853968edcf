"""RetinaNet's test-time decoding, traced for any image size and any number of candidates.

detectron2's DenseDetector keeps, per FPN level, the (anchor, class) scores above the test threshold, then the top
`TOPK_CANDIDATES_TEST` of those, and runs torchvision's batched_nms over all levels. Traced, `min(topk, count)` would
freeze at the count of the traced image, and batched_nms would become the coordinate trick (every box offset by its
class times the image size). Restated here: the top-k of all scores first, with its count an op, and ONNX's own
per-class NMS (export/per_class_nms.py) given the threshold. The NMS drops every candidate at or below it before
comparing any, so it keeps what detectron2 keeps, and the threshold is in the graph once, at the NMS
(core.contract.SCORE_THRESHOLD_INPUT), where verify lowers it.
"""

import torch

from export.per_class_nms import NonMaxSuppression


def decode_per_level_predictions(self, anchors, pred_scores, pred_deltas, score_thresh, topk_candidates, image_size):
    """DenseDetector._decode_per_level_predictions: same arguments; its results and the candidates at or below
    `score_thresh` that it drops, which inference_single_image's NMS drops. pred_scores [HWA, K] (sigmoid),
    pred_deltas [HWA, 4]."""
    from detectron2.structures import Boxes, Instances

    flat = pred_scores.flatten()
    count = flat.shape[0]  # a tensor while tracing, so the count stays an op
    count = torch.clamp(count, max=topk_candidates) if isinstance(count, torch.Tensor) else min(count, topk_candidates)
    scores, indices = flat.topk(count)  # sorted, as detectron2 sorts the kept scores; thresholded by the NMS
    anchor_indices = indices // self.num_classes
    classes = indices - anchor_indices * self.num_classes  # not %: ONNX Mod has no handler, and needs none
    boxes = self.box2box_transform.apply_deltas(pred_deltas[anchor_indices], anchors.tensor[anchor_indices])
    return Instances(image_size, pred_boxes=Boxes(boxes), scores=scores, pred_classes=classes)


def inference_single_image(self, anchors, box_cls, box_delta, image_size):
    """RetinaNet.inference_single_image: the candidates of every level, then NMS class by class, the kept ones by
    score, cut to TEST.DETECTIONS_PER_IMAGE. The NMS sees one batch of boxes with a score row per class, zero where
    a box is of another class, and drops the zeros and every score at or below the threshold."""
    candidates = self._decode_multi_level_predictions(anchors, box_cls, box_delta, self.test_score_thresh,
                                                      self.test_topk_candidates, image_size)
    classes = torch.arange(self.num_classes)[:, None]
    per_class = torch.where(classes == candidates.pred_classes[None], candidates.scores[None], 0.0)  # K x R
    limit = self.max_detections_per_image
    selected = NonMaxSuppression.apply(candidates.pred_boxes.tensor[None], per_class[None], limit,
                                       self.test_nms_thresh, self.test_score_thresh)
    kept = selected[:, 2]
    order = candidates.scores[kept].argsort(descending=True)[:limit]
    return candidates[kept[order]]
