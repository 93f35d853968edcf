"""`d2tf convert`: the whole pipeline, export -> graphfix -> tf_import -> verify, into one directory.

Each stage runs in its own process (PyTorch and TensorFlow cannot share one) and writes into a staging directory
inside OUT; d2tf/publish.py makes the staged files OUT's, all at once, when every stage and the verification have
succeeded.
"""

import os
import signal

from core import D2TFError, cli, contract, zoo
from core.class_names import read_class_names
from core.cli import parse_size
from core.files import hidden_work_dir
from core.process import run_module
from d2tf.publish import EVERY, MANIFEST, claimed, keep_failed, publish
from graphfix.passes import DEFAULT, WITH_FOLDBN
from tf_import.cli import TFLITE_VARIANT_HELP
from verify.photos import check_photos
from verify.run import (
    DEFAULT_SIZES,
    MEASURE_NOISE_HELP,
    VERIFY_IMAGES_HELP,
    VerificationFailed,
    parse_sizes,
    verify,
)


def convert(config, weights, out, roialign="tensorpack", trace_size=(512, 640), verify_sizes=DEFAULT_SIZES,
            coco_dir=None, fold_batchnorm=False, verify_work_dir=None, tensorpack_dir=None, saved_model=True,
            tflite=True, verify_images=None, class_names=None, measure_noise=False, tflite_variants=()):
    """Runs every stage; on success OUT holds FILES and what tf_import wrote: the pb, the SavedModel if
    `saved_model` and the TFLite model if `tflite` (with its `tflite_variants`) unless they cannot express the
    model, and the tensorpack files unless tensorpack cannot. Returns the tensorpack flags line, or None without
    them."""
    if tflite_variants and not tflite:
        raise D2TFError("--tflite-variant needs the TFLite model: drop --no-tflite")
    weights, out = os.path.abspath(weights), os.path.abspath(out)
    if os.path.isfile(config):  # the model info records it; `make verify` may run from elsewhere
        config = os.path.abspath(config)
    if os.path.exists(out) and not os.path.isdir(out):
        raise D2TFError(f"--out {out} exists and is not a directory")
    zoo.read_yaml(config)  # an unknown or unsafe config fails here, before the export stage imports PyTorch
    if not os.path.isfile(weights):
        raise D2TFError(f"weights file not found: {weights}")
    if coco_dir and not os.path.isdir(coco_dir):
        raise D2TFError(f"COCO-style directory not found: {coco_dir}")
    check_photos(verify_images or ())
    if class_names:  # the count is checked by export, which knows the model's
        class_names = os.path.abspath(class_names)
        read_class_names(class_names)
    if tensorpack_dir:
        from runners.tensorpack_runner import check_client

        check_client(tensorpack_dir)
    with claimed(out), hidden_work_dir(out, "staging") as staging:
        stages = (
            ("export", ["--config", config, "--weights", weights, "--out", staging,
                        "--trace-size", "x".join(map(str, trace_size)),
                        *(["--class-names", class_names] if class_names else [])]),
            ("graphfix", [os.path.join(staging, contract.ONNX), "--out", os.path.join(staging, contract.FIXED_ONNX),
                          "--roialign", roialign, "--passes", ",".join(WITH_FOLDBN if fold_batchnorm else DEFAULT)]),
            ("tf_import", [os.path.join(staging, contract.FIXED_ONNX), "--out", staging,
                           "--manifest", os.path.join(staging, MANIFEST),
                           *([] if saved_model else ["--no-saved-model"]), *([] if tflite else ["--no-tflite"]),
                           *(argument for variant in tflite_variants for argument in ("--tflite-variant", variant))]),
        )
        for i, (stage, args) in enumerate(stages, start=1):
            with cli.step(f"stage {i}/4: {stage}"):
                run_module(stage, *args, label=stage)
        with cli.step("stage 4/4: verify"):
            # verify's working files (up to ~180 MB) stay in the staging directory unless the user keeps them.
            _verify(staging, out, verify_sizes, coco_dir, verify_work_dir or os.path.join(staging, "verify"),
                    tensorpack_dir, verify_images, measure_noise)
        published = publish(staging, out)
    if contract.FLAGS not in published:
        return None
    with open(os.path.join(out, contract.FLAGS)) as f:
        return f.read().strip()



def _verify(staging, out, *args):
    """verify on the staged files; when it fails, they go to OUT/.d2tf-failed instead of into OUT."""
    try:
        verify(staging, *args)
    except VerificationFailed as e:
        failed = keep_failed(staging, out)
        raise VerificationFailed(f"{e}; {out} is unchanged, this conversion is kept in {failed}") from None


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="d2tf convert",
        description="Convert a detectron2 R-CNN or RetinaNet to a frozen TensorFlow pb, a SavedModel, TFLite and a "
        "tensorpack npz checkpoint + flags, verifying every stage.",
        epilog="Reads the config (a model-zoo name, a d2tf/... name, or a .yaml with its _BASE_ files), the weights "
        "(.pkl or .pth) and the photos given to verify (--verify-images). Writes OUT's files, "
        "all at once when every stage and the verification passed: "
        + ", ".join(EVERY) + f" ({contract.TFLITE} unless TFLite's builtin ops cannot express the model, the last "
        "three unless tensorpack cannot, with the reason).",
    )
    parser.add_argument("--config", required=True, help=f"model-zoo name (e.g. {zoo.DEFAULT_EXAMPLE}), "
                        "d2tf/... name, or yaml path")
    parser.add_argument("--weights", required=True, help="model_final_*.pkl (model zoo) or .pth (training)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--roialign", choices=("tensorpack", "exact"), default="tensorpack",
                        help="RoIAlign of the pb: tensorpack's sampling ratio 2 (default) or detectron2's exact grid "
                        "(RetinaNet has none: its pb is exact either way)")
    parser.add_argument("--trace-size", type=parse_size, default=(512, 640), metavar="HxW",
                        help="size of the image traced (the outputs take any size; default 512x640)")
    parser.add_argument("--verify-sizes", type=parse_sizes, default=DEFAULT_SIZES, metavar="HxW[,HxW...]",
                        help="synthetic images verify runs through every stage (default: 480x640,600x904)")
    parser.add_argument("--verify-images", nargs="+", metavar="IMAGE", help=VERIFY_IMAGES_HELP)
    parser.add_argument("--class-names", metavar="FILE", help="the model's class names: a text file, one a line in "
                        "class order, or a COCO json (its categories by id); they go into model.json, "
                        "tensorpack_config.py and verify.png (default: the config's test dataset's, when detectron2 "
                        "knows it; else the outputs' class ids stand alone)")
    parser.add_argument("--fold-batchnorm", action="store_true", help="fold the BatchNorms into the convs of the pb "
                        "(graphfix's opt-in foldbn pass; the npz keeps tensorpack's unfolded BatchNorm variables)")
    parser.add_argument("--evaluate", metavar="COCO_DIR", help="also report COCO box/mask AP of detectron2 and the "
                        "pb on a COCO-style directory (images + instances json)")
    parser.add_argument("--verify-work-dir", metavar="DIR", help="keep verify's working files in DIR (the images, "
                        "each runtime's raw outputs as npz, the other RoIAlign mode's fixed graph)")
    parser.add_argument("--tensorpack", metavar="DIR", help="verify also runs tensorpack's own model (DIR: a "
                        "tensorpack examples/FasterRCNN checkout) on the npz, as tensorpack_config.py configures it")
    parser.add_argument("--no-saved-model", action="store_true", help="write no saved_model (skips its export "
                        "and verify's check of it on photos; the pb and npz are unchanged)")
    parser.add_argument("--no-tflite", action="store_true", help=f"write no {contract.TFLITE} (skips its conversion, "
                        "about a minute, and verify's check of it)")
    parser.add_argument("--tflite-variant", action="append", choices=sorted(contract.TFLITE_VARIANTS), default=[],
                        help=TFLITE_VARIANT_HELP)
    parser.add_argument("--measure-noise", action="store_true", help="verify: " + MEASURE_NOISE_HELP)
    args = parser.parse_args(argv)
    # SIGTERM (e.g. `kill`, a CI timeout) unwinds like Ctrl-C, so the staging directory is removed. SIGINT is set
    # too: a process started from a shell's background job inherits SIGINT ignored, and Python then installs no
    # handler of its own, so `kill -INT` did nothing (seen when the suite ran as a background job).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.default_int_handler)
    line = convert(args.config, args.weights, args.out, args.roialign, args.trace_size, args.verify_sizes,
                   args.evaluate, args.fold_batchnorm, args.verify_work_dir, args.tensorpack, not args.no_saved_model,
                   not args.no_tflite, args.verify_images, args.class_names, args.measure_noise, args.tflite_variant)
    files = ", ".join(f for f in EVERY if os.path.lexists(os.path.join(args.out, f)))
    if line is None:
        cli.log(f"[d2tf] done: {args.out} holds {files} (no tensorpack npz: see above)")
        return
    cli.log(f"[d2tf] done: {args.out} holds {files}; use the npz in tensorpack with these flags (or import "
            "tensorpack_config.py, which also registers the class names):")
    print(line, flush=True)


if __name__ == "__main__":
    cli.run(main)
