"""Running passes in order and recording what ran in the model's metadata. onnx.checker's full check (with shape
inference) runs once on the result: after every pass it cost more than the passes themselves."""

import onnx

from core import D2TFError, cli
from core.metadata import record_passes
from graphfix.passes import PASSES


def apply(model, names, roialign="tensorpack"):
    """Runs the named passes on `model` (a ModelProto, changed in place and returned)."""
    check_names(names)
    done = []
    for name in names:
        with cli.step(f"pass {name}"):
            before = len(model.graph.node)
            model = PASSES[name].run(model, roialign=roialign) if name == "roialign" else PASSES[name].run(model)
            cli.log(f"[d2tf]   {name}: {before} -> {len(model.graph.node)} nodes")
        done.append((name, roialign if name == "roialign" else None))
    with cli.step("checking the fixed graph (onnx.checker, full)"):
        onnx.checker.check_model(model, full_check=True)
    record_passes(model, done)
    return model


def check_names(names):
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise D2TFError(f"unknown pass {', '.join(unknown)}; passes: {', '.join(PASSES)}")
