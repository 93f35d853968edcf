"""`d2tf evaluate --out OUT COCO_DIR`: COCO box (and mask) AP of detectron2 and of the converted pb on a
COCO-style directory, side by side, as tensorpack's `predict.py --evaluate` reports it.

The steps (the package's docstring says which module does what) and the report. PyTorch and TensorFlow each run
in their own subprocess (`runners.processes`): the two must never share a process.
"""

import contextlib
import dataclasses
import json
import os
import tempfile

import numpy as np

from core import D2TFError, cli, contract
from evaluate.coco import coco_ap, coco_results
from evaluate.dataset import Dataset, check_size, load_dataset
from evaluate.model import read_model, resize_limits
from evaluate.preprocess import load_image
from runners.processes import detectron2_on_images, pb_on_images

# Images per pair of subprocesses: bounds the images npz (an 800x1333 float32 image is 12.8 MB, and the pb's
# runner holds a whole npz in memory) while keeping each subprocess's model loading (seconds) rare.
CHUNK = 50
RUNTIMES = {"detectron2": "detectron2 (PyTorch)", "pb": "pb (TensorFlow)"}


@dataclasses.dataclass
class Evaluation:
    dataset: Dataset
    resize: tuple  # (min_size, max_size, where they came from)
    mask: bool
    ap: dict  # {runtime: {"bbox"|"segm": (AP, AP50, AP75)}}
    detections: dict  # {runtime: number of detections}


def evaluate(out_dir, coco_dir, work_dir, min_size=None, max_size=None, weights=None):
    """The `## COCO evaluation` markdown section for the converted model in `out_dir` on `coco_dir`; `work_dir`
    receives the images and outputs handed to the subprocesses, and both runtimes' COCO results."""
    return report(evaluate_ap(out_dir, coco_dir, work_dir, min_size, max_size, weights))


def evaluate_ap(out_dir, coco_dir, work_dir, min_size=None, max_size=None, weights=None):
    """The numbers behind `evaluate`'s report."""
    out_dir, work_dir = os.fspath(out_dir), os.fspath(work_dir)
    dataset = load_dataset(coco_dir)  # first: the cheap checks of the user's data need no model
    if not dataset.coco.anns:  # COCOeval would report -1 for every figure
        raise D2TFError(f"{dataset.json_path}: no annotations, nothing to score against")
    info = read_model(out_dir, weights)
    if not {"boxes", "scores", "classes"} <= set(info.outputs):
        raise D2TFError(f"--evaluate scores detections (COCO box and mask AP); a {info.architecture.name} "
                        f"outputs {', '.join(info.outputs)}")
    if len(dataset.category_ids) != info.num_classes:
        raise D2TFError(f"{dataset.json_path} has {len(dataset.category_ids)} categories, the model predicts "
                        f"{info.num_classes} classes")
    limits = resize_limits(info, min_size, max_size)
    mask = info.architecture.mask
    results = detections(info, out_dir, dataset, work_dir, limits, list(RUNTIMES), mask)
    return scored(dataset, limits, mask, results, work_dir)


def scored(dataset, limits, mask, results, work_dir):
    """The Evaluation of each runtime's detections ({runtime: [COCO result]}) against the dataset's annotations;
    the detections are kept in work_dir for a closer look."""
    iou_types = ["bbox", "segm"] if mask and dataset.has_segm else ["bbox"]
    with cli.step("scoring with COCOeval"):
        ap = {r: {t: coco_ap(dataset, results[r], t) for t in iou_types} for r in RUNTIMES}
    for runtime, found in results.items():
        with open(os.path.join(work_dir, f"{runtime}_results.json"), "w") as f:
            json.dump(found, f)
    return Evaluation(dataset, limits, mask, ap, {r: len(v) for r, v in results.items()})


def detections(info, out_dir, dataset, work_dir, limits, runtimes, mask):
    """{runtime: [COCO result]} over the whole dataset, CHUNK images at a time."""
    os.makedirs(work_dir, exist_ok=True)
    results = {r: [] for r in runtimes}
    for start in range(0, len(dataset.images), CHUNK):
        chunk = dataset.images[start : start + CHUNK]
        images, sizes = {}, {}
        with cli.step(f"reading and resizing images {start + 1}-{start + len(chunk)} of {len(dataset.images)}"):
            for image_id, path in chunk:
                images[f"image{image_id}"], sizes[image_id] = load_image(path, *limits[:2], info.input.format)
                check_size(dataset, image_id, sizes[image_id], path)
        outputs = predict(info, out_dir, images, work_dir, runtimes)
        for runtime in runtimes:
            for image_id, _ in chunk:
                key = f"image{image_id}"
                results[runtime] += coco_results(image_id, outputs[runtime][key], sizes[image_id],
                                                 images[key].shape[:2], dataset.category_ids, mask)
    return results


def predict(info, out_dir, images, work_dir, runtimes):
    """{runtime: {image key: outputs}} of each runtime on {image key: image}, each in its own subprocess."""
    images_npz = os.path.join(work_dir, "images.npz")
    np.savez(images_npz, **images)
    results = {}
    for runtime in runtimes:
        out = os.path.join(work_dir, f"{runtime}.npz")
        if runtime == "detectron2":
            results[runtime] = detectron2_on_images(info, images_npz, out)
        else:
            results[runtime] = pb_on_images(os.path.join(out_dir, contract.PB), images_npz, out)

    os.remove(images_npz)
    return results


def report(evaluation):
    """The markdown section."""
    e, d = evaluation, evaluation.dataset
    iou_types = list(e.ap["detectron2"])
    names = {"bbox": "box", "segm": "segm"}
    header = [f"{names[t]} {m}" for t in iou_types for m in ("AP", "AP50", "AP75")]
    rows = {RUNTIMES[r]: [f"{v:.4f}" for t in iou_types for v in e.ap[r][t]] for r in RUNTIMES}
    diff = [b - a for t in iou_types for a, b in zip(e.ap["detectron2"][t], e.ap["pb"][t])]
    rows["pb - detectron2"] = [f"{v:+.4f}" for v in diff]
    lines = [
        "## COCO evaluation",
        "",
        (f"- data: `{d.json_path}`, {len(d.images)} images, {len(d.coco.anns)} annotations, "
         f"{len(d.category_ids)} categories"),
        (f"- input: shortest edge resized to {e.resize[0]}, longest at most {e.resize[1]} ({e.resize[2]}), "
         "as detectron2's test-time ResizeShortestEdge"),
        f"- detections: {', '.join(f'{RUNTIMES[r]} {n}' for r, n in e.detections.items())}",
    ]
    if e.mask and "segm" not in iou_types:
        lines.append("- segm AP not computed: some annotations have no segmentation")
    lines += ["", "| | " + " | ".join(header) + " |", "|---" + "|---:" * len(header) + "|"]
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows.items()]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="d2tf evaluate", description=__doc__.split("\n\n")[0],
        epilog="Reads OUT/model.fixed.onnx (the model info), OUT/model.pb, the weights (.pkl/.pth) the conversion "
        "recorded or --weights, and COCO_DIR's images with its annotations/instances_*.json. Writes the report "
        "(markdown) to stdout; with --work-dir, DIR/detectron2_results.json and DIR/pb_results.json.")
    parser.add_argument("coco_dir", metavar="COCO_DIR",
                        help="images plus annotations/instances_*.json (or one top-level *.json)")
    parser.add_argument("--out", required=True, help="the converted model's directory (model.fixed.onnx, model.pb)")
    parser.add_argument("--work-dir", metavar="DIR", help="keep both runtimes' COCO results in DIR (default: a "
                        "temporary directory)")
    parser.add_argument("--weights", help="detectron2 weights, if not where the conversion recorded them")
    parser.add_argument("--min-size", type=int, help="INPUT.MIN_SIZE_TEST (default: the model config's)")
    parser.add_argument("--max-size", type=int, help="INPUT.MAX_SIZE_TEST (default: the model config's)")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        work = args.work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="d2tf-evaluate-"))
        print(evaluate(args.out, args.coco_dir, work, args.min_size, args.max_size, args.weights), end="")
