"""The box head's NMS traced as one ONNX NonMaxSuppression that runs class by class, for any class count.

detectron2's fast_rcnn_inference_single_image keeps the (proposal, class) pairs above the score threshold and runs
batched_nms on them. Traced, batched_nms becomes torchvision's coordinate trick: one NMS over every pair, each box
offset by its class times the image size. With LVIS's 1203 classes at threshold 1e-4 nearly every pair passes
(1.2 million boxes): the offsets reach 1.6e6, where float32 keeps coordinates to 1/8 px, and the trace of it did not
finish in 5 minutes (torchvision's NMS compares every kept box with every later one), where detectron2 itself runs NMS
class by class.

Here the NMS is ONNX's own per-class form: the boxes of each class are one batch ([K, R, 4], or one batch of [1, R, 4]
for class-agnostic boxes), the scores [K, 1, R] (or [1, K, R]), the score threshold and the per-image count given to
the op, so onnxruntime and TensorFlow stop each class after that many boxes. The kept pairs are then sorted by
score and cut to the per-image count, as detectron2 does.
"""

import torch
from torchvision.ops import nms


class NonMaxSuppression(torch.autograd.Function):
    """ONNX NonMaxSuppression (boxes [B, N, 4] x1y1x2y2, scores [B, C, N]) -> selected [M, 3] (batch, class, box),
    ordered by batch, class, then score; computed eagerly with torchvision's NMS, one (batch, class) at a time."""

    @staticmethod
    def forward(ctx, boxes, scores, max_per_class, iou_threshold, score_threshold):
        selected = []
        for b in range(scores.shape[0]):
            for c in range(scores.shape[1]):
                candidates = (scores[b, c] > score_threshold).nonzero()[:, 0]
                keep = candidates[nms(boxes[b, candidates], scores[b, c, candidates], iou_threshold)][:max_per_class]
                selected.append(torch.stack([torch.full_like(keep, b), torch.full_like(keep, c), keep], dim=1))
        return torch.cat(selected)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_threshold, score_threshold):
        def constant(value, dtype):
            return g.op("Constant", value_t=torch.tensor([value], dtype=dtype))

        return g.op("NonMaxSuppression", boxes, scores, constant(max_per_class, torch.int64),
                    constant(iou_threshold, torch.float32), constant(score_threshold, torch.float32))


def fast_rcnn_inference_single_image(boxes, scores, image_shape, score_thresh, nms_thresh, topk_per_image):
    """detectron2's function of that name (modeling/roi_heads/fast_rcnn.py): same arguments, same results, its NMS
    as described above. detectron2 first drops the rows with non-finite values, if there are any: a branch on the
    data, which a trace on finite values never takes, so it is left out."""
    from detectron2.structures import Boxes, Instances

    scores = scores[:, :-1]  # R x K: the background column dropped
    per_class_boxes = boxes.shape[1] // 4  # K, or 1 for class-agnostic regression
    clipped = Boxes(boxes.reshape(-1, 4))
    clipped.clip(image_shape)
    boxes = clipped.tensor.view(-1, per_class_boxes, 4).transpose(0, 1)  # K x R x 4 (or 1 x R x 4)
    nms_scores = scores.t()[None] if per_class_boxes == 1 else scores.t()[:, None]  # 1 x K x R (or K x 1 x R)
    limit = topk_per_image if topk_per_image >= 0 else torch.iinfo(torch.int64).max
    selected = NonMaxSuppression.apply(boxes, nms_scores, limit, nms_thresh, score_thresh)
    batch, proposal = selected[:, 0], selected[:, 2]
    classes = selected[:, 1] if per_class_boxes == 1 else batch
    kept_scores = scores[proposal, classes]
    order = kept_scores.argsort(descending=True)[:limit]

    result = Instances(image_shape)
    result.pred_boxes = Boxes(boxes[batch[order], proposal[order]])
    result.scores = kept_scores[order]
    result.pred_classes = classes[order]
    return result, proposal[order]
