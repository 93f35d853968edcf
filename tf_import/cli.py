"""`python -m tf_import`: model.fixed.onnx -> <out>/model.pb (frozen, tensorpack's predict.py interface)."""

import argparse
import os

from d2tf import D2TFError, cli
from d2tf.files import write_atomic


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tf_import",
        description="Translate a graphfix'ed d2tf ONNX graph to a frozen TensorFlow pb with tensorpack's interface "
        "(input image:0 [H,W,3] BGR float; output/boxes:0, output/scores:0, output/labels:0, output/masks:0).",
    )
    parser.add_argument("model", nargs="?", help="graphfix's model.fixed.onnx")
    parser.add_argument("--out", help="output directory (default: the model's directory)")
    parser.add_argument("--list-ops", action="store_true", help="list the ONNX ops with a handler and exit")
    args = parser.parse_args(argv)
    if args.list_ops:
        from tf_import.ops import load_all

        for op, fn in sorted(load_all().items()):
            print(f"{op:20s} {fn.__module__.replace('.', '/')}.py")
        return
    if not args.model:
        parser.error("the model.fixed.onnx to translate is required")
    convert(args.model, args.out or os.path.dirname(os.path.abspath(args.model)))


def convert(src, out_dir):
    import onnx

    from tf_import.freeze import frozen_graph_def

    if not os.path.isfile(src):
        raise D2TFError(f"ONNX file not found: {src}")
    with cli.step(f"loading {src}"):
        try:
            model = onnx.load(src)
        except Exception as e:  # protobuf raises DecodeError and others
            raise D2TFError(f"{src}: not an ONNX model ({type(e).__name__})") from None
    with cli.step("translating to TensorFlow and freezing"):
        graph_def = frozen_graph_def(model)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.pb")
    write_atomic(path, graph_def.SerializeToString(deterministic=True))
    cli.log(f"[d2tf] wrote {path} ({os.path.getsize(path) / 2**20:.0f} MiB, {len(graph_def.node)} nodes)")
    return path
