"""A model's class names from the user's file (`--class-names`): detectron2 keeps them in its MetadataCatalog, not in
the config or the weights, so a trained model's names come from the dataset it was trained on. Either a text file,
one name a line (blank lines skipped), or a COCO-style json, whose categories are taken in the order of their ids
(as detectron2's COCO loader maps them to 0-based classes)."""

import json

from core import D2TFError
from core.files import read_regular

MAX_BYTES = 1 << 20  # a name file is a few KB; LVIS's 1203 names are 30 KB as text, 460 KB as its categories json
MAX_NAME = 200  # characters of one name


def read_class_names(path):
    """The list of class names in `path`, 0-based class order; one-line D2TFError for anything else."""
    text = _read(path)
    names = _from_coco(text, path) if path.lower().endswith(".json") else [
        line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise D2TFError(f"--class-names {path}: no names in it")
    for name in names:
        if len(name) > MAX_NAME or not name.isprintable():
            raise D2TFError(f"--class-names {path}: {name[:40]!r}... is not a name (printable, at most {MAX_NAME} "
                            "characters)")
    return names


def _read(path):
    try:
        data = read_regular(path, MAX_BYTES)
    except OSError as e:
        raise D2TFError(f"--class-names {path}: {e.strerror}") from None
    except ValueError:
        raise D2TFError(f"--class-names {path}: not a regular file") from None
    if data is None:
        raise D2TFError(f"--class-names {path}: more than {MAX_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise D2TFError(f"--class-names {path}: not UTF-8 text") from None


def _from_coco(text, path):
    """The names of a COCO json's categories, sorted by id."""
    try:
        categories = json.loads(text)["categories"]
        return [str(c["name"]) for c in sorted(categories, key=lambda c: int(c["id"]))]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise D2TFError(f"--class-names {path}: not a COCO json with categories of an id and a name") from None
