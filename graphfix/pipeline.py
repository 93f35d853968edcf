"""Running passes in order, checking the graph after each, and recording what ran in the model's metadata."""

import onnx

from d2tf import D2TFError, cli
from graphfix.passes import PASSES


def apply(model, names, roialign="tensorpack"):
    """Runs the named passes on `model` (a ModelProto, changed in place and returned)."""
    check_names(names)
    done = []
    for name in names:
        with cli.step(f"pass {name}"):
            before = len(model.graph.node)
            model = PASSES[name].run(model, roialign=roialign) if name == "roialign" else PASSES[name].run(model)
            onnx.checker.check_model(model, full_check=True)
            cli.log(f"[d2tf]   {name}: {before} -> {len(model.graph.node)} nodes")
        done.append(f"roialign({roialign})" if name == "roialign" else name)
    _record(model, "graphfix_passes", ",".join(done))
    return model


def check_names(names):
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise D2TFError(f"unknown pass {', '.join(unknown)}; passes: {', '.join(PASSES)}")


def _record(model, key, value):
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    model.metadata_props.add(key=key, value=value)
