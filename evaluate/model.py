"""The converted model being evaluated: its model.json (with the weights detectron2 needs) and its input size."""

import json
import os

from core import D2TFError

# detectron2's INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST in every zoo config, for a model.json written before export
# recorded them.
DEFAULT_RESIZE = (800, 1333)


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
