"""`python -m tf_import`: model.fixed.onnx -> <out>/model.pb (frozen, tensorpack's predict.py interface),
<out>/model.npz (tensorpack checkpoint) and <out>/flags.txt (the tensorpack config flags, also printed)."""

import argparse
import os

from core import cli
from core.files import load_onnx, write_atomic
from core.metadata import read_info


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tf_import",
        description="Translate a graphfix'ed d2tf ONNX graph to a frozen TensorFlow pb with tensorpack's interface "
        "(input image:0 [H,W,3] BGR float; output/boxes:0, output/scores:0, output/labels:0, output/masks:0), and "
        "write its weights as a tensorpack npz checkpoint with the config flags to use it.",
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
    """Writes model.pb, model.npz and flags.txt once all three are computed; returns the flags line. Reads nothing
    but `src`: the model info is in its metadata, and the checkpoint's tensors are its initializers."""
    from tf_import import tensorpack_checkpoint as tp
    from tf_import.freeze import frozen_graph_def

    with cli.step(f"loading {src}"):
        model = load_onnx(src)
        info = read_info(model, src)
    with cli.step("translating to TensorFlow and freezing"):
        graph_def = frozen_graph_def(model)
    with cli.step("deriving the tensorpack checkpoint"):
        weights = tp.tensorpack_weights(tp.initializers(model), info["architecture"])
        line = tp.flags_line(info)
    os.makedirs(out_dir, exist_ok=True)
    write_atomic(os.path.join(out_dir, "model.npz"), tp.npz_bytes(weights))
    write_atomic(os.path.join(out_dir, "flags.txt"), (line + "\n").encode())
    path = os.path.join(out_dir, "model.pb")
    write_atomic(path, graph_def.SerializeToString(deterministic=True))
    cli.log(f"[d2tf] wrote {path} ({os.path.getsize(path) / 2**20:.0f} MiB, {len(graph_def.node)} nodes), "
            f"model.npz ({len(weights)} tensors) and flags.txt; tensorpack flags:")
    print(line, flush=True)
    return line
