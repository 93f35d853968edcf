"""`python -m d2tf.convert`: the whole pipeline, export -> graphfix -> tf_import -> verify, into one directory.

Each stage runs in its own process (PyTorch and TensorFlow cannot share one) and writes into a hidden staging
directory beside OUT. Only when every stage and the verification have succeeded do the files move into OUT, so a
failed or interrupted run never leaves a partial file there.
"""

import argparse
import os
import shutil
import signal
import tempfile

from core import D2TFError, cli, zoo
from core.cli import parse_size
from core.process import run_module
from graphfix.passes import DEFAULT, WITH_FOLDBN
from tf_import.tensorpack_config import FILES as TENSORPACK_FILES
from verify.run import DEFAULT_SIZES, parse_sizes, verify

FILES = ("model.onnx", "model.json", "model.fixed.onnx", "model.pb", "report.md", "verify.png")  # always written
STAGING = ".{name}.partial-"  # + process id + "-" + random suffix


def convert(config, weights, out, roialign="tensorpack", trace_size=(512, 640), verify_sizes=DEFAULT_SIZES,
            coco_dir=None, fold_batchnorm=False, verify_work_dir=None, tensorpack_dir=None):
    """Runs every stage; on success OUT holds FILES, and TENSORPACK_FILES unless tensorpack cannot express the
    model. Returns the tensorpack flags line, or None without them."""
    weights, out = os.path.abspath(weights), os.path.abspath(out)
    if os.path.isfile(config):  # the model info records it; `make verify` may run from elsewhere
        config = os.path.abspath(config)
    if os.path.exists(out) and not os.path.isdir(out):
        raise D2TFError(f"--out {out} exists and is not a directory")
    if not os.path.isfile(weights):
        raise D2TFError(f"weights file not found: {weights}")
    if coco_dir and not os.path.isdir(coco_dir):
        raise D2TFError(f"COCO-style directory not found: {coco_dir}")
    if tensorpack_dir:
        from runners.tensorpack_runner import check_client

        check_client(tensorpack_dir)
    parent, name = os.path.split(out)
    os.makedirs(parent, exist_ok=True)
    remove_abandoned_staging(parent, name)
    staging = tempfile.mkdtemp(prefix=f"{STAGING.format(name=name)}{os.getpid()}-", dir=parent)
    try:
        stages = (
            ("export", ["--config", config, "--weights", weights, "--out", staging,
                        "--trace-size", "x".join(map(str, trace_size))]),
            ("graphfix", [os.path.join(staging, "model.onnx"), "--out", os.path.join(staging, "model.fixed.onnx"),
                          "--roialign", roialign, "--passes", ",".join(WITH_FOLDBN if fold_batchnorm else DEFAULT)]),
            ("tf_import", [os.path.join(staging, "model.fixed.onnx"), "--out", staging]),
        )
        for i, (stage, args) in enumerate(stages, start=1):
            with cli.step(f"stage {i}/4: {stage}"):
                run_module(stage, *args, label=stage)
        with cli.step("stage 4/4: verify"):
            verify(staging, verify_sizes, coco_dir, verify_work_dir, tensorpack_dir)
        published = _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if "flags.txt" not in published:
        return None
    with open(os.path.join(out, "flags.txt")) as f:
        return f.read().strip()


def _publish(staging, out):
    """Moves the written files into OUT, where an earlier conversion's tensorpack files go if this one has none;
    returns their names."""
    written = [f for f in FILES + TENSORPACK_FILES if os.path.isfile(os.path.join(staging, f))]
    expected = FILES + (TENSORPACK_FILES if set(TENSORPACK_FILES) & set(written) else ())
    missing = [f for f in expected if f not in written]
    if missing:
        raise D2TFError(f"the stages did not write {', '.join(missing)}")
    os.makedirs(out, exist_ok=True)
    for f in FILES + TENSORPACK_FILES:
        if f in written:
            os.replace(os.path.join(staging, f), os.path.join(out, f))
        elif os.path.exists(os.path.join(out, f)):
            os.remove(os.path.join(out, f))
    return written


def remove_abandoned_staging(parent, name):
    """Staging directories of runs killed outright (SIGKILL gives no chance to clean up), recognised by their
    process id no longer running."""
    prefix = STAGING.format(name=name)
    for entry in os.listdir(parent):
        if entry.startswith(prefix):
            pid = entry[len(prefix):].split("-")[0]
            if pid.isdigit() and not _running(int(pid)):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m d2tf.convert",
        description="Convert a detectron2 R-CNN to a tensorpack npz checkpoint + flags and a frozen TensorFlow pb, "
        "verifying every stage. OUT receives: " + ", ".join(FILES + TENSORPACK_FILES) + " (the last three unless "
        "tensorpack cannot express the model, with the reason).",
    )
    parser.add_argument("--config", required=True, help=f"model-zoo name (e.g. {zoo.DEFAULT_EXAMPLE}), "
                        "d2tf/... name, or yaml path")
    parser.add_argument("--weights", required=True, help="model_final_*.pkl (model zoo) or .pth (training)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--roialign", choices=("tensorpack", "exact"), default="tensorpack",
                        help="RoIAlign of the pb: tensorpack's sampling ratio 2 (default) or detectron2's exact grid")
    parser.add_argument("--trace-size", type=parse_size, default=(512, 640), metavar="HxW",
                        help="size of the image traced (the outputs take any size; default 512x640)")
    parser.add_argument("--verify-sizes", type=parse_sizes, default=DEFAULT_SIZES, metavar="HxW[,HxW...]",
                        help="synthetic images verify runs through every stage (default: 480x640,600x904)")
    parser.add_argument("--fold-batchnorm", action="store_true", help="fold the BatchNorms into the convs of the pb "
                        "(graphfix's opt-in foldbn pass; the npz keeps tensorpack's unfolded BatchNorm variables)")
    parser.add_argument("--evaluate", metavar="COCO_DIR", help="also report COCO box/mask AP of detectron2 and the "
                        "pb on a COCO-style directory (images + instances json)")
    parser.add_argument("--verify-work-dir", metavar="DIR", help="keep verify's working files in DIR (the images, "
                        "each runtime's raw outputs as npz, the other RoIAlign mode's fixed graph)")
    parser.add_argument("--tensorpack", metavar="DIR", help="verify also runs tensorpack's own model (DIR: a "
                        "tensorpack examples/FasterRCNN checkout) on the npz, as tensorpack_config.py configures it")
    args = parser.parse_args(argv)
    # SIGTERM (e.g. `kill`, a CI timeout) unwinds like Ctrl-C, so the staging directory is removed. SIGINT is set
    # too: a process started from a shell's background job inherits SIGINT ignored, and Python then installs no
    # handler of its own, so `kill -INT` did nothing (seen when the suite ran as a background job).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.default_int_handler)
    line = convert(args.config, args.weights, args.out, args.roialign, args.trace_size, args.verify_sizes,
                   args.evaluate, args.fold_batchnorm, args.verify_work_dir, args.tensorpack)
    if line is None:
        cli.log(f"[d2tf] done: {args.out} holds {', '.join(FILES)} (no tensorpack npz: see above)")
        return
    cli.log(f"[d2tf] done: {args.out} holds {', '.join(FILES + TENSORPACK_FILES)}; use the npz in tensorpack with "
            "these flags (or import tensorpack_config.py, which also registers the class names):")
    print(line, flush=True)


if __name__ == "__main__":
    cli.run(main)
