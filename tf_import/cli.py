"""`d2tf tf_import`: model.fixed.onnx -> <out>/model.pb (frozen, tensorpack's predict.py interface),
<out>/saved_model (the same model taking images as they come, detections in the TF Object Detection API's form:
tf_import/serving), <out>/model.tflite (the pb's interface in TFLite's builtin ops: tf_import/tflite.py), and for
tensorpack's own model <out>/model.npz (checkpoint), flags.txt (config flags, also printed) and tensorpack_config.py
(the flags with the class names, to import)."""

import os

from core import cli, contract
from core.contract import PB, SAVED_MODEL, TENSORPACK_FILES, TFLITE
from core.files import load_onnx, write_atomic
from core.metadata import read_info
from tf_import import tensorpack_config as tpc


TFLITE_VARIANT_HELP = ("also write a smaller TFLite model (repeatable): float16 (model.float16.tflite, weights in "
                       "half precision) or int8 (model.int8.tflite, weights quantised to int8, activations float); "
                       "verify measures what each costs against detectron2")


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="d2tf tf_import",
        description="Translate a graphfix'ed d2tf ONNX graph to a frozen TensorFlow pb with tensorpack's interface "
        "(input image:0 [H,W,3] BGR float; output/boxes:0, output/scores:0, output/labels:0, output/masks:0); write "
        "the same model as a SavedModel (images as they come in, the TF Object Detection API's outputs) and as "
        "model.tflite (TFLite builtin ops only), and its weights as a tensorpack npz checkpoint with the config "
        "flags to use it.",
        epilog="Reads graphfix's model.fixed.onnx and nothing else. Writes OUT/model.pb, OUT/saved_model/ (unless "
        "--no-saved-model), OUT/model.tflite (unless --no-tflite), and OUT/model.npz, flags.txt and "
        "tensorpack_config.py (unless tensorpack cannot compute the model); prints the flags line.",
    )
    parser.add_argument("model", nargs="?", help="graphfix's model.fixed.onnx")
    parser.add_argument("--out", help="output directory (default: the model's directory)")
    parser.add_argument("--no-saved-model", action="store_true", help="write no saved_model (one already in OUT is "
                        "left as it is, and named)")
    parser.add_argument("--no-tflite", action="store_true", help="write no model.tflite (one already in OUT is left "
                        "as it is, and named)")
    parser.add_argument("--tflite-variant", action="append", choices=sorted(contract.TFLITE_VARIANTS), default=[],
                        help=TFLITE_VARIANT_HELP)
    parser.add_argument("--manifest", metavar="FILE", help="also write the names of the files and directories this "
                        "run wrote into OUT to FILE, one per line (d2tf convert publishes what it lists)")
    parser.add_argument("--list-ops", action="store_true", help="list the ONNX ops with a handler and exit")
    args = parser.parse_args(argv)
    if args.list_ops:
        from tf_import.ops import load_all

        for op, fn in sorted(load_all().items()):
            print(f"{op:20s} {fn.__module__.replace('.', '/')}.py")
        return
    if not args.model:
        parser.error("the model.fixed.onnx to translate is required")
    if args.no_tflite and args.tflite_variant:
        parser.error("--tflite-variant needs the TFLite model: drop --no-tflite")
    written = convert(args.model, args.out or os.path.dirname(os.path.abspath(args.model)), not args.no_saved_model,
                      not args.no_tflite, args.tflite_variant)
    if args.manifest:
        write_atomic(args.manifest, "".join(f"{name}\n" for name in written).encode())


def convert(src, out_dir, with_saved_model=True, with_tflite=True, tflite_variants=()):
    """Writes model.pb, saved_model if `with_saved_model`, model.tflite if `with_tflite` unless TFLite's builtin ops
    cannot express the model (with its `tflite_variants`, contract.TFLITE_VARIANTS' keys), and the tensorpack files
    unless tensorpack cannot, once all are computed; returns the names written. The flags line, if any, goes to
    stdout. Reads nothing but `src`: the model info is in its metadata, and the checkpoint's tensors are its
    initializers."""
    from tf_import.freeze import frozen_graph_def
    from tf_import.serving import saved_model

    with cli.step(f"loading {src}"):
        model = load_onnx(src)
        info = read_info(model, src)
    with cli.step("translating to TensorFlow and freezing"):
        graph_def = frozen_graph_def(model)
    files, line = tensorpack_files(model, info)
    beyond = contract.beyond_detections(info.outputs)
    if beyond and (with_tflite or with_saved_model):
        cli.log(f"[d2tf] no saved_model or {TFLITE}: they answer with detections, one row each, and this "
                f"{info.architecture.name}'s {' and '.join(beyond)} have no place there")
        with_tflite = with_saved_model = False
    if with_tflite:
        files.update(tflite_files(model, info.test.detections_per_image, tflite_variants))
    os.makedirs(out_dir, exist_ok=True)
    for name, content in files.items():
        write_atomic(os.path.join(out_dir, name), content)
    path = os.path.join(out_dir, PB)
    write_atomic(path, graph_def.SerializeToString(deterministic=True))
    if with_saved_model:
        with cli.step("writing the SavedModel"):
            saved_model.write(graph_def, info, os.path.join(out_dir, SAVED_MODEL))
    cli.log(f"[d2tf] wrote {path} ({os.path.getsize(path) / 2**20:.0f} MiB, {len(graph_def.node)} nodes)"
            + (f", {SAVED_MODEL}" if with_saved_model else "")
            + "".join(f", {name}" for name in (TFLITE, *contract.TFLITE_VARIANTS.values()) if name in files)
            + (f", {', '.join(TENSORPACK_FILES)}" if line else ""))
    # Files of the kinds this run did not write are someone's: an earlier run's, or the user's own. Never removed.
    left = [name for name in (SAVED_MODEL, TFLITE, *contract.TFLITE_VARIANTS.values(), *TENSORPACK_FILES)
            if name not in files and not (name == SAVED_MODEL and with_saved_model)
            and os.path.lexists(os.path.join(out_dir, name))]
    if left:
        cli.log(f"[d2tf] left {', '.join(left)} in {out_dir} as they were: this run wrote none, so they are not "
                "this model's")
    if line:
        print(line, flush=True)  # stdout: the flags line alone, for scripts
    return [PB, *([SAVED_MODEL] if with_saved_model else []), *files]


def tflite_files(model, detections, variants=()):
    """{TFLITE: bytes, and each of `variants`' file: bytes}, or {} with the reason logged."""
    from tf_import.tflite import NotConvertible, tflite_bytes

    names = ", ".join([TFLITE, *(contract.TFLITE_VARIANTS[variant] for variant in dict.fromkeys(variants))])
    try:
        with cli.step(f"converting to TFLite ({names})"):
            return tflite_bytes(model, detections, variants)
    except NotConvertible as e:
        cli.log(f"[d2tf] no {TFLITE}: {e}")
        return {}


def tensorpack_files(model, info):
    """({file name: bytes}, flags line) of the tensorpack files, or ({}, None) with the reason logged."""
    from tf_import import tensorpack_checkpoint as tp

    try:
        tpc.check_expressible(info)
    except tpc.NotExpressible as e:
        cli.log(f"[d2tf] no tensorpack npz: {e}")
        return {}, None
    with cli.step("deriving the tensorpack checkpoint"):
        weights = tp.tensorpack_weights(tp.initializers(model), info.architecture, info.input.format)
        line = tpc.flags_line(info)
        return {contract.NPZ: tp.npz_bytes(weights), contract.FLAGS: (line + "\n").encode(),
                contract.TENSORPACK_CONFIG: tpc.module_source(info).encode()}, line
