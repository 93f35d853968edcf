"""The SavedModel's serving signature against detectron2's whole inference (DefaultPredictor: its test resize, the
model, detector_postprocess), on uint8 RGB images as they come: verify's photos (verify/photos.py) and two synthetic
photos of odd, non-square sizes, one smaller and one larger than the config's test resize. Detections are compared at
image scale; masks, pasted at image size by both, by the share of their pixels that are equal. verify runs them
(verify/run.py: _run_all)."""

import numpy as np

from core.matching import match_detections
from core.synthetic import synthetic_image
from verify.agreement import EXACT, STRICT_IOU, detections_per_image, inexact, measure

RUNTIMES = ("detectron2.photos", "saved_model")  # verify's runtimes on the photos (outputs as <runtime>.npz)
MASK_EQUAL = 0.999  # the least share of equal pixels in a matched instance's image-size mask
_NO_RESIZE_SIDE = 480  # the side the photos are sized around when the config does not resize


def photos(info, seeds):
    """{key: HxWx3 uint8 RGB}: the synthetic images of two `seeds` (verify's images' own, whose content detectron2
    detects things in) as photos, one smaller and one larger than the test resize's short side."""
    side = info.resize.min_size_test or _NO_RESIZE_SIDE
    sizes = [(int(side * 0.6) | 1, int(side * 0.85) | 1), (int(side * 1.3) | 1, int(side * 1.15) | 1)]
    return {f"photo{seed}_{h}x{w}": np.round(synthetic_image(h, w, seed=seed))[:, :, ::-1].astype(np.uint8)
            for seed, (h, w) in zip(seeds, sizes)}


def row(outputs, shapes, exact, kept=None, tolerance=EXACT):
    """measure() of the SavedModel against detectron2 on boxes and scores (`kept`: the model's KeptSet) on the photos
    `shapes` ({key: [height, width]}), detectron2's detections on each, and `mask_equal`: the least share of equal
    pixels over matched instances (None without masks); with `exact`, what keeps it from being exact."""
    reference, candidate = (outputs[runtime] for runtime in RUNTIMES)
    unmasked = [{key: {k: v for k, v in image.items() if k != "masks"} for key, image in side.items()}
                for side in (reference, candidate)]
    figures = measure(*unmasked, kept, tolerance=tolerance)
    figures["mask_equal"] = _mask_equal(reference, candidate)
    # Nothing above the model's threshold on either side is agreement: the stages, run with it lowered, compared the
    # model itself.
    problems = inexact(figures) if exact and figures["reference"] + figures["candidate"] else []
    if exact and figures["mask_equal"] is not None and figures["mask_equal"] < MASK_EQUAL:
        problems.append(f"a matched mask has {figures['mask_equal']:.4%} of its pixels equal, < {MASK_EQUAL:.1%}")
    figures.update(photos=shapes, detections=detections_per_image(reference), exact=exact,
                   failures=[f"saved_model against detectron2: {'; '.join(problems)}"] if problems else [])
    return figures


def _mask_equal(reference, candidate):
    shares = []
    for key, ref in reference.items():
        if "masks" not in ref:
            return None
        pairs = match_detections(ref, candidate[key], STRICT_IOU).pairs
        shares += [float(np.mean(ref["masks"][i] == candidate[key]["masks"][j])) for i, j in pairs]
    return min(shares, default=None)
