"""`python -m d2tf.evaluate --out OUT COCODIR`: COCO box (and mask) AP of detectron2 and of the converted pb on a
COCO-style directory, side by side, as tensorpack's `predict.py --evaluate` reports it.

Both run on the same images, prepared as detectron2's test-time pipeline prepares them (PIL read, EXIF rotation,
ResizeShortestEdge, BGR); detections are mapped back to the original image as detectron2's `detector_postprocess`
does, and scored with pycocotools' COCOeval. PyTorch and TensorFlow each run in their own subprocess
(`export.predict`, `tf_import.predict`): the two must never share a process.
"""

import argparse
import contextlib
import copy
import dataclasses
import glob
import io
import json
import os
import tempfile

import numpy as np

from d2tf import D2TFError, cli
from d2tf.runtimes import detectron2_outputs, pb_outputs

# detectron2's INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST in every zoo config, for a model.json written before export
# recorded them.
DEFAULT_RESIZE = (800, 1333)
# Images per pair of subprocesses: bounds the images npz (an 800x1333 float32 image is 12.8 MB, and tf_import.predict
# holds a whole npz in memory) while keeping each subprocess's model loading (seconds) rare.
CHUNK = 50
RUNTIMES = {"detectron2": "detectron2 (PyTorch)", "pb": "pb (TensorFlow)"}


@dataclasses.dataclass
class Dataset:
    json_path: str
    coco: object  # pycocotools.coco.COCO of the ground truth
    images: list  # [(image id, file path)], in id order
    category_ids: list  # sorted: detectron2's contiguous class i is category_ids[i]
    has_segm: bool  # every annotation has a segmentation (segm AP needs it)


@dataclasses.dataclass
class Evaluation:
    dataset: Dataset
    resize: tuple  # (min_size, max_size, where they came from)
    mask: bool
    ap: dict  # {runtime: {"bbox"|"segm": (AP, AP50, AP75)}}
    detections: dict  # {runtime: number of detections}


# --- the COCO-style directory


def find_annotations(coco_dir):
    """The instances json: `annotations/instances_*.json`, else the only `*.json` at the top level."""
    if not os.path.isdir(coco_dir):
        raise D2TFError(f"COCO directory not found: {coco_dir}")
    for pattern in ("annotations/instances_*.json", "*.json"):
        found = sorted(glob.glob(os.path.join(glob.escape(coco_dir), pattern)))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise D2TFError(f"{coco_dir}: several annotation files ({', '.join(found)}); keep one")
    raise D2TFError(f"{coco_dir}: no annotations/instances_*.json and no *.json at the top level")


def image_dirs(coco_dir, json_path):
    """Where `file_name`s may be relative to: the directory, its `images/`, and COCO's own layout
    (`annotations/instances_val2017.json` -> `val2017/`)."""
    dirs = [coco_dir, os.path.join(coco_dir, "images")]
    name = os.path.splitext(os.path.basename(json_path))[0]
    if name.startswith("instances_"):
        dirs.append(os.path.join(coco_dir, name[len("instances_") :]))
    return dirs


def resolve_images(records, dirs):
    """[(id, path)] of every image record; an error naming the missing ones and where they were looked for."""
    found, missing = [], []
    for record in sorted(records, key=lambda r: r["id"]):
        paths = [os.path.join(d, record["file_name"]) for d in dirs]
        path = next((p for p in paths if os.path.isfile(p)), None)
        if path:
            found.append((record["id"], path))
        else:
            missing.append(record["file_name"])
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise D2TFError(f"{len(missing)} image(s) not found ({', '.join(missing[:3])}{more}), "
                        f"looked in: {', '.join(dirs)}")
    return found


def load_dataset(coco_dir):
    coco_dir = os.fspath(coco_dir)
    json_path = find_annotations(coco_dir)
    try:
        with open(json_path) as f:
            content = json.load(f)
    except (OSError, ValueError) as e:
        raise D2TFError(f"cannot read {json_path}: {e}") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(content.get(key), list):
            raise D2TFError(f"{json_path}: not a COCO instances file (no '{key}' list)")
    if not content["images"]:
        raise D2TFError(f"{json_path}: no images")
    images = resolve_images(content["images"], image_dirs(coco_dir, json_path))
    coco = _silently(_coco_from, content)
    has_segm = all("segmentation" in a for a in content["annotations"])
    return Dataset(json_path, coco, images, sorted(c["id"] for c in content["categories"]), has_segm)


def _coco_from(content):
    """A pycocotools COCO from an already loaded dict (COCO() would read the file a second time)."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = content
    coco.createIndex()
    return coco


def _silently(function, *args):
    """pycocotools prints its progress on stdout, which is the report's channel."""
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


# --- the converted model


def read_model(out_dir, weights=None):
    """model.json with `source.weights` checked (detectron2 needs them) and the pb's presence checked."""
    path = os.path.join(out_dir, "model.json")
    if not os.path.isfile(path):
        raise D2TFError(f"no model.json in {out_dir}: convert the model first (make convert OUT={out_dir})")
    with open(path) as f:
        info = json.load(f)
    if not os.path.isfile(os.path.join(out_dir, "model.pb")):
        raise D2TFError(f"no model.pb in {out_dir}: run tf_import first (make convert OUT={out_dir})")
    if weights:
        info["source"]["weights"] = os.fspath(weights)
    if not os.path.isfile(info["source"]["weights"]):
        origin = "given" if weights else "recorded in model.json; pass --weights"
        raise D2TFError(f"detectron2's weights not found: {info['source']['weights']} ({origin})")
    return info


def resize_limits(info, min_size=None, max_size=None):
    """(min, max, source): given values, else model.json's `resize`, else the zoo's 800/1333."""
    recorded = info.get("resize")
    if recorded:
        default, source = (recorded["min_size_test"], recorded["max_size_test"]), "model.json"
    else:
        default, source = DEFAULT_RESIZE, "detectron2 zoo default"
    if min_size is not None or max_size is not None:
        source = "command line"
    return (default[0] if min_size is None else min_size, default[1] if max_size is None else max_size, source)


# --- images, as detectron2's test-time pipeline prepares them


def output_shape(height, width, min_size, max_size):
    """(new height, new width): detectron2's ResizeShortestEdge.get_output_shape, rounding included."""
    scale = min_size * 1.0 / min(height, width)
    newh, neww = (min_size * 1.0, scale * width) if height < width else (scale * height, min_size * 1.0)
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def load_image(path, min_size, max_size):
    """(HxWx3 float32 BGR resized image, original (h, w)). detectron2 resizes the uint8 image with PIL (bilinear)
    and only then converts to float; MIN_SIZE_TEST 0 means no resize."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
    size = image.height, image.width
    if min_size:
        newh, neww = output_shape(*size, min_size, max_size)
        image = image.resize((neww, newh), Image.BILINEAR)
    return np.asarray(image)[:, :, ::-1].astype(np.float32), size


def check_size(coco, image_id, size, path):
    """Ground truth is in the json's pixel frame: a file of another size would be scored against the wrong boxes."""
    record = coco.imgs[image_id]
    expected = record.get("height", size[0]), record.get("width", size[1])
    if tuple(expected) != size:
        raise D2TFError(f"{path}: image is {size[1]}x{size[0]} (WxH), the json says {expected[1]}x{expected[0]}")


# --- running both runtimes (one subprocess each: PyTorch and TensorFlow never share a process)


def predict(info, out_dir, images, work_dir, runtimes):
    """{runtime: {image key: outputs}} of each runtime on {image key: image}."""
    images_npz = os.path.join(work_dir, "images.npz")
    np.savez(images_npz, **images)
    results = {}
    for runtime in runtimes:
        out = os.path.join(work_dir, f"{runtime}.npz")
        if runtime == "detectron2":
            results[runtime] = detectron2_outputs(info, images_npz, out)
        else:
            results[runtime] = pb_outputs(os.path.join(out_dir, "model.pb"), images_npz, out)
    os.remove(images_npz)
    return results


# --- detections back in the original image, as COCO results


def to_original(boxes, size, resized):
    """detector_postprocess: boxes scaled to the original image, clipped to it; `keep` drops the empty ones."""
    (h, w), (newh, neww) = size, resized
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4) * np.float32([w / neww, h / newh, w / neww, h / newh])
    boxes = np.clip(boxes, 0, np.float32([w, h, w, h]))
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes, keep


def paste_mask(mask, box, height, width):
    """detectron2's paste_masks_in_image for one box-relative MxM mask of probabilities: grid_sample (bilinear,
    align_corners=False, zero padding) on the pixel centres of a window 1 px around the box, thresholded at 0.5.
    The sampling grid is separable, so the bilinear sampling is two small matrix products."""
    x0, y0, x1, y1 = (float(v) for v in box)
    c0, r0 = max(int(np.floor(x0)) - 1, 0), max(int(np.floor(y0)) - 1, 0)
    c1, r1 = min(int(np.ceil(x1)) + 1, width), min(int(np.ceil(y1)) + 1, height)
    rows = _bilinear_weights(np.arange(r0, r1), y0, y1, mask.shape[0])
    cols = _bilinear_weights(np.arange(c0, c1), x0, x1, mask.shape[1])
    pasted = np.zeros((height, width), bool)
    pasted[r0:r1, c0:c1] = rows @ mask.astype(np.float32) @ cols.T >= 0.5
    return pasted


def _bilinear_weights(pixels, lo, hi, size):
    """[len(pixels), size] weights with which grid_sample reads a size-long mask axis spanning [lo, hi] at the
    centres of `pixels`; computed in float32 in detectron2's order, so threshold ties fall the same way."""
    grid = ((pixels.astype(np.float32) + np.float32(0.5)) - np.float32(lo)) / np.float32(hi - lo) * 2 - 1
    pos = ((grid + 1) * size - 1) / 2
    first = np.floor(pos).astype(np.int64)
    frac = pos - first
    # Columns 0 and size+1 stand for the zero padding outside the mask and are dropped.
    weights = np.zeros((len(pixels), size + 2), np.float32)
    index = np.arange(len(pixels))
    weights[index, np.clip(first + 1, 0, size + 1)] += 1 - frac
    weights[index, np.clip(first + 2, 0, size + 1)] += frac
    return weights[:, 1:-1]


def coco_results(image_id, outputs, size, resized, category_ids, mask):
    """COCO result dicts (bbox xywh, and RLE segmentation for mask models) of one image's outputs. Classes are
    0-based for both runtimes (d2tf.runtimes converts the pb's labels); class i is the i-th smallest category id,
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


def detections(info, out_dir, dataset, work_dir, limits, runtimes, mask):
    """{runtime: [COCO result]} over the whole dataset, CHUNK images at a time."""
    os.makedirs(work_dir, exist_ok=True)
    results = {r: [] for r in runtimes}
    for start in range(0, len(dataset.images), CHUNK):
        chunk = dataset.images[start : start + CHUNK]
        images, sizes = {}, {}
        with cli.step(f"reading and resizing images {start + 1}-{start + len(chunk)} of {len(dataset.images)}"):
            for image_id, path in chunk:
                images[f"image{image_id}"], sizes[image_id] = load_image(path, *limits[:2])
                check_size(dataset.coco, image_id, sizes[image_id], path)
        outputs = predict(info, out_dir, images, work_dir, runtimes)
        for runtime in runtimes:
            for image_id, _ in chunk:
                key = f"image{image_id}"
                results[runtime] += coco_results(image_id, outputs[runtime][key], sizes[image_id],
                                                 images[key].shape[:2], dataset.category_ids, mask)
    return results


# --- scoring


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

    return _silently(run)


def evaluate_ap(out_dir, coco_dir, work_dir, min_size=None, max_size=None, weights=None):
    """The numbers behind `evaluate`'s report."""
    out_dir, work_dir = os.fspath(out_dir), os.fspath(work_dir)
    dataset = load_dataset(coco_dir)  # first: the cheap checks of the user's data need no model
    if not dataset.coco.anns:  # COCOeval would report -1 for every figure
        raise D2TFError(f"{dataset.json_path}: no annotations, nothing to score against")
    info = read_model(out_dir, weights)
    if len(dataset.category_ids) != info["num_classes"]:
        raise D2TFError(f"{dataset.json_path} has {len(dataset.category_ids)} categories, the model predicts "
                        f"{info['num_classes']} classes")
    limits = resize_limits(info, min_size, max_size)
    mask = bool(info["architecture"]["mask"])
    results = detections(info, out_dir, dataset, work_dir, limits, list(RUNTIMES), mask)
    iou_types = ["bbox", "segm"] if mask and dataset.has_segm else ["bbox"]
    with cli.step("scoring with COCOeval"):
        ap = {r: {t: coco_ap(dataset, results[r], t) for t in iou_types} for r in RUNTIMES}
    for runtime, found in results.items():  # kept for a closer look
        with open(os.path.join(work_dir, f"{runtime}_results.json"), "w") as f:
            json.dump(found, f)
    return Evaluation(dataset, limits, mask, ap, {r: len(v) for r, v in results.items()})


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


def evaluate(out_dir, coco_dir, work_dir, min_size=None, max_size=None, weights=None):
    """The `## COCO evaluation` markdown section for the converted model in `out_dir` on `coco_dir`; `work_dir`
    receives the images and outputs handed to the subprocesses, and both runtimes' COCO results."""
    return report(evaluate_ap(out_dir, coco_dir, work_dir, min_size, max_size, weights))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m d2tf.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("coco_dir", help="images plus annotations/instances_*.json (or one top-level *.json)")
    parser.add_argument("--out", required=True, help="the converted model's directory (model.json, model.pb)")
    parser.add_argument("--work", help="keep both runtimes' COCO results here (default: a temporary directory)")
    parser.add_argument("--weights", help="detectron2 weights, if not where model.json says")
    parser.add_argument("--min-size", type=int, help="INPUT.MIN_SIZE_TEST (default: model.json's, else 800)")
    parser.add_argument("--max-size", type=int, help="INPUT.MAX_SIZE_TEST (default: model.json's, else 1333)")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        work = args.work or stack.enter_context(tempfile.TemporaryDirectory(prefix="d2tf-evaluate-"))
        print(evaluate(args.out, args.coco_dir, work, args.min_size, args.max_size, args.weights), end="")


if __name__ == "__main__":
    cli.run(main)
