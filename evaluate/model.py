"""The converted model being evaluated: the model info its fixed graph carries (with the weights detectron2 needs)
and its test-time input size."""

import dataclasses
import os

from core import D2TFError, contract
from core.files import load_onnx
from core.metadata import read_info


def read_model(out_dir, weights=None):
    """The model info of OUT/model.fixed.onnx, with `source.weights` checked (detectron2 needs them) and the pb's
    presence checked."""
    path = os.path.join(out_dir, contract.FIXED_ONNX)
    if not os.path.isfile(path):
        raise D2TFError(f"no {contract.FIXED_ONNX} in {out_dir}: convert the model first (make convert OUT={out_dir})")
    info = read_info(load_onnx(path), path)
    if not os.path.isfile(os.path.join(out_dir, contract.PB)):
        raise D2TFError(f"no {contract.PB} in {out_dir}: run tf_import first (make convert OUT={out_dir})")
    if weights:
        info = dataclasses.replace(info, source=dataclasses.replace(info.source, weights=os.fspath(weights)))
    if not os.path.isfile(info.source.weights):
        origin = "given" if weights else "recorded at export; pass --weights"
        raise D2TFError(f"detectron2's weights not found: {info.source.weights} ({origin})")
    return info


def resize_limits(info, min_size=None, max_size=None):
    """(min, max, source): given values, else the config's INPUT.MIN/MAX_SIZE_TEST recorded at export."""
    recorded = info.resize.min_size_test, info.resize.max_size_test

    source = "command line" if min_size is not None or max_size is not None else "the model's config"
    return (recorded[0] if min_size is None else min_size, recorded[1] if max_size is None else max_size, source)
