"""`d2tf COMMAND [ARGS ...]`: every d2tf tool under one command, the console script `make setup` installs in
.venv/bin (also `python -m d2tf`). A command is its module's own `main`, given the arguments after the command's
name, so `d2tf COMMAND --help` is that tool's help, with the files it reads and writes."""

import argparse
import importlib

from core import cli

# command -> (the module whose main(argv) runs it, its line in `d2tf --help`). Only the chosen command's module is
# imported: `d2tf --help` stays fast, and PyTorch and TensorFlow, which crash when they share a process, never meet.
COMMANDS = {
    "convert": ("d2tf.convert", "the whole pipeline (export, graphfix, tf_import, verify): config + weights -> OUT"),
    "export": ("export.cli", "stage 1: a config and its .pkl/.pth -> model.onnx, model.json"),
    "graphfix": ("graphfix.cli", "stage 2: model.onnx -> model.fixed.onnx"),
    "tf_import": ("tf_import.cli", "stage 3: model.fixed.onnx -> model.pb, saved_model/, model.tflite, tensorpack's "
                  "model.npz"),
    "verify": ("verify.run", "OUT's models against each other and detectron2 -> report.md, verify.png"),
    "evaluate": ("evaluate.run", "COCO AP of detectron2 and OUT's model.pb on a COCO-style directory"),
    "inspect": ("d2tf.netron", "serve OUT's model.onnx or model.fixed.onnx in Netron"),
    "bench": ("bench.run", "time, size and memory of each stage and runtime, per architecture -> bench.md"),
    "calibrate": ("d2tf.calibrate", "a calibrated random checkpoint (.pkl or .pth) for a config"),
    "zoo": ("d2tf.zoo_table", "docs/zoo.md's table: every model-zoo config and what d2tf makes of it"),
}


def _parser():
    width = max(map(len, COMMANDS)) + 2
    parser = cli.ArgumentParser(
        prog="d2tf", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert a detectron2 detector to ONNX, TensorFlow (pb, SavedModel, TFLite) and a tensorpack "
        "checkpoint,\nverifying every stage against the one before.",
        epilog="commands:\n" + "\n".join(f"  {name:{width}}{line}" for name, (_, line) in COMMANDS.items()))
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND", help="one of the commands below")
    # REMAINDER: the command's options, --help included, are its own parser's to read.
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="the command's arguments: `d2tf COMMAND --help` lists them and the files it reads and "
                        "writes")
    return parser


def dispatch(argv=None):
    args = _parser().parse_args(argv)
    importlib.import_module(COMMANDS[args.command][0]).main(args.args)


def main():
    cli.run(dispatch)
