"""`python -m verify OUT`: runs the same images through detectron2 (PyTorch), onnxruntime on OUT/model.onnx and
OUT/model.fixed.onnx, and the frozen OUT/model.pb (TensorFlow), then writes OUT/report.md and OUT/verify.png.

The other RoIAlign mode is measured too: verify switches a copy of the fixed graph to it (a temporary file) and runs
that in onnxruntime, so the report shows what tensorpack's sampling (or the exact grid) costs against detectron2.

With `--tensorpack DIR` (a tensorpack examples/FasterRCNN checkout) it also runs tensorpack's own model on
OUT/model.npz as OUT/tensorpack_config.py configures it, and reports it against detectron2 and against the
tensorpack-mode graph (the pb, or in exact mode the switched copy).
"""

import argparse
import concurrent.futures
import contextlib
import os
import tempfile

import numpy as np

from core import D2TFError, cli
from core.cli import parse_size
from core.files import load_onnx, save_outputs, write_atomic
from core.metadata import read_info, read_passes, record_passes, roialign_mode
from core.process import kill_running
from core.synthetic import synthetic_image
from runners import onnx_runner
from runners.processes import detectron2_on_images, pb_on_images, tensorpack_on_images
from verify import report
from verify.agreement import agreement_ap, compare
from verify.draw import side_by_side

DEFAULT_SIZES = ((480, 640), (600, 904))  # two aspects; 904 is not a multiple of 32 (FPN pads inside the graph)
STRICT_IOU = 0.99


class VerificationFailed(D2TFError):
    """A stage that must be exact is outside its tolerance, or the images checked nothing; report.md is written
    and says FAILED at its top."""

    exit_status = 3


def verify(out_dir, sizes=DEFAULT_SIZES, coco_dir=None, work_dir=None, tensorpack_dir=None):
    """Writes report.md and verify.png into out_dir; returns the report's figures. With `work_dir`, verify's
    working files stay there: images.npz, each runtime's outputs as `<runtime>.npz` (entries `<image>/<output>`;
    0-based classes, but the TensorFlow runtimes' own 1-based labels in model.pb.npz and tensorpack.npz) and the
    other RoIAlign mode's fixed graph."""
    fixed_path = os.path.join(out_dir, "model.fixed.onnx")
    if not os.path.isfile(fixed_path):
        raise D2TFError(f"{fixed_path} not found: verify reads a directory written by `make convert`")
    fixed = load_onnx(fixed_path)
    info, mode = read_info(fixed, fixed_path), roialign_mode(fixed, fixed_path)
    if tensorpack_dir:
        tensorpack_dir = _tensorpack_client(tensorpack_dir, out_dir, info)
    images = {f"synthetic{i + 1}_{h}x{w}": synthetic_image(h, w, seed=i + 1) for i, (h, w) in enumerate(sizes)}
    with _work_dir(work_dir) as work:
        images_npz = os.path.join(work, "images.npz")
        np.savez(images_npz, **images)
        other = "exact" if mode == "tensorpack" else "tensorpack"
        # detectron2 and the pb run in their own processes while onnxruntime runs here: on a 2-core machine this
        # took 22 s against 34 s one after another (R50-FPN, two small images).
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            try:
                children = {
                    "detectron2": pool.submit(detectron2_on_images, info, images_npz,
                                              os.path.join(work, "detectron2.npz")),
                    "model.pb": pool.submit(pb_on_images, os.path.join(out_dir, "model.pb"), images_npz,
                                            os.path.join(work, "model.pb.npz")),
                }
                if tensorpack_dir:
                    children["tensorpack"] = pool.submit(tensorpack_on_images, tensorpack_dir, out_dir, images_npz,
                                                         os.path.join(work, "tensorpack.npz"))
                outputs = {name: _onnxruntime(os.path.join(out_dir, name), images, work)
                           for name in ("model.onnx", "model.fixed.onnx")}
                outputs[f"other:{other}"] = _onnxruntime(_other_mode(fixed, other, work), images, work)
                outputs.update({name: child.result() for name, child in children.items()})
            except BaseException:
                kill_running()
                raise
        evaluation = _evaluate(out_dir, coco_dir, work) if coco_dir else None
    figures = _figures(outputs, mode, other)
    if tensorpack_dir:
        figures["tensorpack"] = _tensorpack_figures(outputs, "model.pb" if mode == "tensorpack" else f"other:{other}")
    first = next(iter(images))
    png = side_by_side(images[first], [("detectron2", outputs["detectron2"][first]),
                                       (f"model.pb ({mode})", outputs["model.pb"][first])])
    text = report.render(info, mode, sizes, figures, evaluation)
    write_atomic(os.path.join(out_dir, "verify.png"), png)
    write_atomic(os.path.join(out_dir, "report.md"), text.encode())
    cli.log(f"[d2tf] wrote {os.path.join(out_dir, 'report.md')} and verify.png")
    return figures


@contextlib.contextmanager
def _work_dir(path):
    if path is None:
        with tempfile.TemporaryDirectory(prefix="d2tf-verify-") as work:
            yield work
    else:
        os.makedirs(path, exist_ok=True)
        yield os.fspath(path)


def _figures(outputs, mode, other):
    """Per-stage differences (each stage against the one before it) and agreement with detectron2."""
    chain = ["detectron2", "model.onnx", "model.fixed.onnx", "model.pb"]
    stages = [dict(stage=b, against=a, **compare(outputs[a], outputs[b])) for a, b in zip(chain, chain[1:])]
    agreement = []
    for name, roialign, runtime in (("model.pb", mode, "TensorFlow"), (f"other:{other}", other, "onnxruntime")):
        row = dict(model=name, roialign=roialign, runtime=runtime, **compare(outputs["detectron2"], outputs[name]))
        row["strict_agreement"] = compare(outputs["detectron2"], outputs[name], STRICT_IOU)["agreement"]
        row["ap"], row["ap50"] = agreement_ap(outputs["detectron2"], outputs[name])
        agreement.append(row)
    return {"stages": stages, "agreement": agreement}


def _tensorpack_client(client_dir, out_dir, info):
    """The client directory to run, or None (logged) when the conversion wrote no tensorpack npz."""
    from runners.tensorpack_runner import check_client, check_inputs
    from tf_import.tensorpack_config import NotExpressible, check_expressible

    check_client(client_dir)
    try:
        check_expressible(info)
    except NotExpressible as e:
        cli.log(f"[d2tf] --tensorpack: nothing to run, the conversion wrote no tensorpack npz ({e})")
        return None
    check_inputs(client_dir, out_dir)  # here too, so a missing file fails before the other runtimes run
    return os.path.abspath(client_dir)


def _tensorpack_figures(outputs, reference):
    """tensorpack's model against detectron2 and against the tensorpack-mode graph `reference`."""
    rows = []
    for against in ("detectron2", reference):
        row = dict(against=against, **compare(outputs[against], outputs["tensorpack"]))
        row["strict_agreement"] = compare(outputs[against], outputs["tensorpack"], STRICT_IOU)["agreement"]
        rows.append(row)
    return rows


def _onnxruntime(path, images, work):
    """onnxruntime's outputs of one ONNX file, also saved as `<file name>.npz` in the work directory."""
    with cli.step(f"running {os.path.basename(path)} in onnxruntime"):
        session = onnx_runner.session(path)
        outputs = {key: onnx_runner.run(session, image) for key, image in images.items()}
    save_outputs(os.path.join(work, os.path.basename(path) + ".npz"), outputs)
    return outputs


def _other_mode(fixed, mode, work):
    """The fixed graph switched to the other RoIAlign mode, in the work directory. Only graphfix's roialign pass
    depends on the mode, so this equals fixing model.onnx again, in a second instead of the whole pipeline's time."""
    from graphfix.passes import roialign

    with cli.step(f"switching a copy of the fixed graph to --roialign {mode}, to measure that mode too"):
        passes = read_passes(fixed)
        roialign.run(fixed, mode)
        record_passes(fixed, [(name, mode if name == "roialign" else option) for name, option in passes.items()])
        path = os.path.join(work, f"model.fixed.{mode}.onnx")
        write_atomic(path, fixed.SerializeToString())
    return path


def _evaluate(out_dir, coco_dir, work):
    from evaluate.run import evaluate

    return evaluate(out_dir, coco_dir, work)


def parse_sizes(text):
    return tuple(parse_size(s) for s in text.split(","))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="a directory written by `make convert` / `python -m d2tf.convert`")
    parser.add_argument("--sizes", type=parse_sizes, default=DEFAULT_SIZES, metavar="HxW[,HxW...]",
                        help="sizes of the synthetic verification images (default: 480x640,600x904)")
    parser.add_argument("--evaluate", metavar="COCO_DIR",
                        help="also evaluate detectron2 and the pb on a COCO-style dir (images + instances json)")
    parser.add_argument("--work-dir", metavar="DIR", help="keep verify's working files in DIR: the images, each "
                        "runtime's raw outputs as npz, the other RoIAlign mode's fixed graph")
    parser.add_argument("--tensorpack", metavar="DIR", help="also run tensorpack's own model (DIR: a tensorpack "
                        "examples/FasterRCNN checkout) on model.npz and tensorpack_config.py")
    args = parser.parse_args(argv)
    verify(args.out, args.sizes, args.evaluate, args.work_dir, args.tensorpack)

