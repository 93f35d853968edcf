"""evaluate: COCO AP of detectron2 and the pb on a tiny COCO-style set whose ground truth is detectron2's own
confident detections, so detectron2 must score box AP 1 and the pb nearly so."""

import json

import numpy as np
import pytest
from PIL import Image

from core.synthetic import synthetic_image
from evaluate.dataset import load_dataset
from evaluate.model import read_model, resize_limits
from evaluate.postprocess import paste_mask
from evaluate.preprocess import output_shape
from evaluate.run import RUNTIMES, detections, report, scored
from tests.processes import run_python

CONFIG = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
# (height, width, format): landscape, portrait, and one whose long side hits the max size at the min size.
IMAGES = [(200, 260, "png"), (240, 200, "jpg"), (180, 300, "png")]
# The test resize instead of the config's 800/1333: a tenth of the pixels, the same rounding and capping.
LIMITS = (256, 400)
GT_SCORE = 0.5


def category_id(cls):
    """Non-contiguous COCO ids, so a wrong class -> category mapping cannot score."""
    return 2 * cls + 1


def write_coco_set(directory, num_classes, annotations=()):
    """images/*.png|jpg plus annotations/instances_test.json; returns the directory."""
    (directory / "images").mkdir(parents=True, exist_ok=True)
    (directory / "annotations").mkdir(exist_ok=True)
    images = []
    for i, (h, w, ext) in enumerate(IMAGES):
        bgr = np.clip(synthetic_image(h, w, seed=i), 0, 255).astype(np.uint8)
        Image.fromarray(bgr[:, :, ::-1]).save(directory / "images" / f"{i}.{ext}")
        images.append({"id": 10 + i, "file_name": f"{i}.{ext}", "height": h, "width": w})
    content = {"images": images, "annotations": list(annotations),
               "categories": [{"id": category_id(c), "name": f"class{c}"} for c in range(num_classes)]}
    (directory / "annotations" / "instances_test.json").write_text(json.dumps(content))
    return directory


@pytest.mark.architecture(CONFIG)
def test_evaluate_on_detectron2_ground_truth(pipeline, tmp_path, measure):
    """The ground truth is detectron2's detections with score >= GT_SCORE on the set, so each runtime runs once:
    evaluate's own detection route gives both runtimes' results, scored as evaluate_ap scores them."""
    p = pipeline(CONFIG)
    info = read_model(str(p.out), str(p.weights))
    num_classes = info.num_classes
    limits = resize_limits(info, *LIMITS)
    work = tmp_path / "work"
    results = detections(info, str(p.out), load_dataset(write_coco_set(tmp_path / "coco", num_classes)), str(work),
                         limits, list(RUNTIMES), mask=True)
    kept = [r for r in results["detectron2"] if r["score"] >= GT_SCORE]
    truth = [dict(r, id=i + 1, iscrowd=0, area=r["bbox"][2] * r["bbox"][3]) for i, r in enumerate(kept)]
    assert len(truth) >= 5, "too few confident detections to make a ground truth"
    dataset = load_dataset(write_coco_set(tmp_path / "coco", num_classes, truth))
    result = scored(dataset, limits, True, results, str(work))
    d2, pb = result.ap["detectron2"], result.ap["pb"]
    measure("evaluate (R50-FPN Mask R-CNN, 3 images)", ground_truth=len(truth), d2_box_ap=d2["bbox"][0],
            d2_segm_ap=d2["segm"][0], pb_box_ap=pb["bbox"][0], pb_segm_ap=pb["segm"][0])
    assert d2["bbox"][0] == pytest.approx(1.0, abs=1e-6)
    assert d2["segm"][0] >= 0.9  # its own masks, but an empty pasted mask can match nothing
    assert pb["bbox"][0] >= 0.95
    text = report(result)
    assert text.startswith("## COCO evaluation\n")
    assert "| detectron2 (PyTorch) | 1.0000 |" in text and "| pb - detectron2 |" in text and "segm AP" in text


def run_evaluate(*args):
    return run_python("-m", "evaluate", *args)


def one_line_error(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_missing_json_is_one_line(tmp_path):
    (tmp_path / "coco" / "images").mkdir(parents=True)
    error = one_line_error(run_evaluate("--out", tmp_path, tmp_path / "coco"))
    assert "instances_*.json" in error


def test_missing_image_is_one_line(tmp_path):
    coco_dir = write_coco_set(tmp_path / "coco", num_classes=2)
    (coco_dir / "images" / "1.jpg").unlink()
    error = one_line_error(run_evaluate("--out", tmp_path, coco_dir))
    assert "1 image(s) not found (1.jpg)" in error


def test_no_annotations_is_one_line(tmp_path):
    coco_dir = write_coco_set(tmp_path / "coco", num_classes=2)
    error = one_line_error(run_evaluate("--out", tmp_path, coco_dir))
    assert error.endswith("instances_test.json: no annotations, nothing to score against")


def test_resize_matches_detectron2_rounding():
    """detectron2's ResizeShortestEdge.get_output_shape, e.g. a 180x300 image at 800/1333 is capped by the long side."""
    assert output_shape(200, 260, 800, 1333) == (800, 1040)
    assert output_shape(240, 200, 800, 1333) == (960, 800)
    assert output_shape(180, 300, 800, 1333) == (800, 1333)
    assert output_shape(333, 500, 800, 1333) == (800, 1201)


def test_pasted_mask_fills_its_box():
    """A mask of ones pastes as the pixels whose centres lie inside its box (grid_sample samples at centres)."""
    pasted = paste_mask(np.ones((28, 28), np.float32), np.float32([10, 20, 30.4, 25]), 40, 50)
    rows, cols = np.nonzero(pasted)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20, 24, 10, 29)
