"""What a stage's ONNX file says about itself, in its metadata_props: the model info export computed (so no later
stage needs a file beside it), the graphfix passes that ran and the RoiAligns' sampling ratios as exported. Each is
written by one function and read by one."""

import json

from core import D2TFError
from core.model_info import ModelInfo

INFO_KEY = "d2tf_model_info"  # core.model_info.ModelInfo as JSON
PASSES_KEY = "graphfix_passes"  # e.g. "roialign(exact),nms,shapes,cleanup"
EXPORTED_SAMPLING_KEY = "d2tf_roialign_sampling"  # {RoiAlign node name: sampling_ratio as exported} as JSON


def write_info(model, info):
    _set(model, INFO_KEY, info.to_json())


def read_info(model, path):
    """The ModelInfo export recorded in `model` (loaded from `path`, named in the error)."""
    value = _props(model).get(INFO_KEY)
    if value is None:
        raise D2TFError(f"{path} has no d2tf model info in its metadata: was it written by d2tf's export?")
    return ModelInfo.from_json(value, path)


def record_passes(model, passes):
    """`passes`: [(name, option or None)] in the order they ran."""
    _set(model, PASSES_KEY, ",".join(f"{name}({option})" if option else name for name, option in passes))


def read_passes(model):
    """{pass name: option or None} of the graphfix run recorded in `model`; {} if graphfix never ran on it."""
    passes = {}
    for item in filter(None, _props(model).get(PASSES_KEY, "").split(",")):
        name, _, option = item.partition("(")
        passes[name] = option.rstrip(")") or None
    return passes


def roialign_mode(model, path):
    mode = read_passes(model).get("roialign")
    if mode is None:
        raise D2TFError(f"{path} does not record a roialign pass: was it written by graphfix?")
    return mode


def record_exported_sampling(model, ratios):
    """Keeps `ratios` ({RoiAlign node name: sampling_ratio}) unless the model already records the exported ones."""
    if EXPORTED_SAMPLING_KEY not in _props(model):
        _set(model, EXPORTED_SAMPLING_KEY, json.dumps(ratios, sort_keys=True))


def exported_sampling(model):
    """{RoiAlign node name: sampling_ratio as exported}; {} before record_exported_sampling."""
    return json.loads(_props(model).get(EXPORTED_SAMPLING_KEY, "{}"))


def _props(model):
    return {p.key: p.value for p in model.metadata_props}


def _set(model, key, value):
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    model.metadata_props.add(key=key, value=value)
