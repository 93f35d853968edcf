"""`d2tf graphfix`: model.onnx -> model.fixed.onnx through the named passes."""

import os

from core import cli, contract
from core.files import load_onnx, write_atomic
from graphfix.passes import DEFAULT, PASSES, summary
from graphfix.passes.roialign import MODES
from graphfix.pipeline import apply, check_names


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="d2tf graphfix",
        description="Rewrite an exported d2tf ONNX graph so TensorFlow/tensorpack can take it; every pass keeps "
        "the graph valid and runnable in onnxruntime.",
        epilog="Reads the export stage's model.onnx. Writes model.fixed.onnx (beside it unless --out), with the "
        "passes run recorded in its metadata.",
    )
    parser.add_argument("model", nargs="?", help="the export stage's model.onnx")
    parser.add_argument("--out", help="output path (default: model.fixed.onnx beside the input)")
    parser.add_argument("--roialign", choices=MODES, default="tensorpack",
                        help="tensorpack: sampling ratio 2 as tensorpack computes it (default); exact: detectron2's "
                        "adaptive grid")
    parser.add_argument("--passes", default=",".join(DEFAULT), help="comma-separated, in order (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="list the passes and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name in PASSES:
            print(f"{name:10s} {summary(name)}")
        return
    if not args.model:
        parser.error("the model.onnx to fix is required")
    out = args.out or os.path.join(os.path.dirname(args.model), contract.FIXED_ONNX)
    fix(args.model, out, [p for p in args.passes.split(",") if p], args.roialign)


def fix(src, out, passes=DEFAULT, roialign="tensorpack"):
    check_names(passes)
    with cli.step(f"loading {src}"):
        model = load_onnx(src)
    model = apply(model, passes, roialign)
    write_atomic(out, model.SerializeToString())
    cli.log(f"[d2tf] wrote {out} ({len(model.graph.node)} nodes)")
    return out
