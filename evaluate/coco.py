"""COCO's side: one image's detections as COCO result dicts, and their AP against the ground truth (COCOeval)."""

import copy

import numpy as np

from evaluate.dataset import quietly
from evaluate.postprocess import paste_mask, to_original


def coco_results(image_id, outputs, size, resized, category_ids, mask):
    """COCO result dicts (bbox xywh, and RLE segmentation for mask models) of one image's outputs. Classes are
    0-based for both runtimes (runners.processes converts the pb's labels); class i is the i-th smallest category id,
    as in detectron2's COCO mapping."""
    import pycocotools.mask as mask_util

    boxes, keep = to_original(outputs["boxes"], size, resized)
    results = []
    for i in np.flatnonzero(keep):
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        result = {"image_id": int(image_id), "category_id": int(category_ids[int(outputs["classes"][i])]),
                  "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(outputs["scores"][i])}
        if mask:
            pasted = paste_mask(outputs["masks"][i], boxes[i], *size)
            rle = mask_util.encode(np.asfortranarray(pasted[:, :, None].astype(np.uint8)))[0]
            result["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
        results.append(result)
    return results


def coco_ap(dataset, results, iou_type):
    """(AP, AP50, AP75) of results against the ground truth; segm drops the boxes, as detectron2's evaluator
    does, so that loadRes takes areas from the masks."""
    from pycocotools.cocoeval import COCOeval

    if not results:  # loadRes cannot take an empty list
        return (0.0, 0.0, 0.0)
    results = copy.deepcopy(results)  # loadRes adds fields in place
    if iou_type == "segm":
        for result in results:
            result.pop("bbox")

    def run():
        evaluator = COCOeval(dataset.coco, dataset.coco.loadRes(results), iou_type)
        evaluator.params.imgIds = [image_id for image_id, _ in dataset.images]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        return tuple(float(s) for s in evaluator.stats[:3])

    return quietly(run)
