"""The COCO-style directory: its instances json, where its images are, and its ground truth as a pycocotools COCO."""

import contextlib
import dataclasses
import glob
import io
import json
import os

from core import D2TFError


@dataclasses.dataclass
class Dataset:
    json_path: str
    coco: object  # pycocotools.coco.COCO of the ground truth
    images: list  # [(image id, file path)], in id order
    category_ids: list  # sorted: detectron2's contiguous class i is category_ids[i]
    has_segm: bool  # every annotation has a segmentation (segm AP needs it)


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
    coco = quietly(_coco_from, content)
    has_segm = all("segmentation" in a for a in content["annotations"])
    return Dataset(json_path, coco, images, sorted(c["id"] for c in content["categories"]), has_segm)


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


def check_size(dataset, image_id, size, path):
    """Ground truth is in the json's pixel frame: a file of another size would be scored against the wrong boxes."""
    record = dataset.coco.imgs[image_id]
    expected = record.get("height", size[0]), record.get("width", size[1])
    if tuple(expected) != size:
        raise D2TFError(f"{path}: image is {size[1]}x{size[0]} (WxH), the json says {expected[1]}x{expected[0]}")


def quietly(function, *args):
    """`function(*args)` without pycocotools' progress prints: stdout is the report's channel."""
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def _coco_from(content):
    """A pycocotools COCO from an already loaded dict (COCO() would read the file a second time)."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = content
    coco.createIndex()
    return coco
