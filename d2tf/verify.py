"""`python -m d2tf.verify OUT`: runs the same images through detectron2 (PyTorch), onnxruntime on OUT/model.onnx and
OUT/model.fixed.onnx, and the frozen OUT/model.pb (TensorFlow), then writes OUT/report.md and OUT/verify.png.

The other RoIAlign mode is measured too: verify fixes OUT/model.onnx with it into a temporary file and runs that in
onnxruntime, so the report shows what tensorpack's sampling (or the exact grid) costs against detectron2.
"""

import argparse
import json
import os
import tempfile

import numpy as np

from d2tf import D2TFError, cli, ort, report
from d2tf.agreement import agreement_ap, compare
from d2tf.cli import parse_size
from d2tf.draw import side_by_side
from d2tf.files import write_atomic
from d2tf.runtimes import detectron2_outputs, pb_outputs
from d2tf.synthetic import synthetic_image

DEFAULT_SIZES = ((480, 640), (600, 904))  # two aspects; 904 is not a multiple of 32 (FPN pads inside the graph)
STRICT_IOU = 0.99


def verify(out_dir, sizes=DEFAULT_SIZES, coco_dir=None):
    """Writes report.md and verify.png into out_dir; returns the report's figures."""
    info = _read_json(os.path.join(out_dir, "model.json"))
    fixed_path = os.path.join(out_dir, "model.fixed.onnx")
    mode = roialign_mode(fixed_path)
    images = {f"synthetic{i + 1}_{h}x{w}": synthetic_image(h, w, seed=i + 1) for i, (h, w) in enumerate(sizes)}
    with tempfile.TemporaryDirectory(prefix="d2tf-verify-") as work:
        images_npz = os.path.join(work, "images.npz")
        np.savez(images_npz, **images)
        outputs = {"detectron2": detectron2_outputs(info, images_npz, os.path.join(work, "detectron2.npz"))}
        for name in ("model.onnx", "model.fixed.onnx"):
            outputs[name] = _onnxruntime(os.path.join(out_dir, name), images)
        outputs["model.pb"] = pb_outputs(os.path.join(out_dir, "model.pb"), images_npz, os.path.join(work, "pb.npz"))
        other = "exact" if mode == "tensorpack" else "tensorpack"
        outputs[f"other:{other}"] = _onnxruntime(_fix_other_mode(out_dir, other, work), images)
        evaluation = _evaluate(out_dir, coco_dir, work) if coco_dir else None
    figures = _figures(outputs, mode, other)
    first = next(iter(images))
    png = side_by_side(images[first], [("detectron2", outputs["detectron2"][first]),
                                       (f"model.pb ({mode})", outputs["model.pb"][first])])
    text = report.render(info, mode, sizes, figures, evaluation)
    write_atomic(os.path.join(out_dir, "verify.png"), png)
    write_atomic(os.path.join(out_dir, "report.md"), text.encode())
    cli.log(f"[d2tf] wrote {os.path.join(out_dir, 'report.md')} and verify.png")
    return figures


def roialign_mode(fixed_path):
    """The RoIAlign mode graphfix recorded in the fixed graph's metadata."""
    import onnx

    props = {p.key: p.value for p in onnx.load(fixed_path, load_external_data=False).metadata_props}
    for name in props.get("graphfix_passes", "").split(","):
        if name.startswith("roialign("):
            return name[len("roialign("):-1]
    raise D2TFError(f"{fixed_path} does not record a roialign pass: was it written by graphfix?")


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


def _onnxruntime(path, images):
    with cli.step(f"running {os.path.basename(path)} in onnxruntime"):
        session = ort.session(path)
        return {key: ort.run(session, image) for key, image in images.items()}


def _fix_other_mode(out_dir, mode, work):
    from graphfix.cli import fix

    with cli.step(f"graphfix with --roialign {mode}, to measure that mode too"):
        return fix(os.path.join(out_dir, "model.onnx"), os.path.join(work, f"model.fixed.{mode}.onnx"), roialign=mode)


def _evaluate(out_dir, coco_dir, work):
    from d2tf.evaluate import evaluate

    return evaluate(out_dir, coco_dir, work)


def _read_json(path):
    if not os.path.isfile(path):
        raise D2TFError(f"{path} not found: verify reads a directory written by `make convert`")
    with open(path) as f:
        return json.load(f)


def parse_sizes(text):
    return tuple(parse_size(s) for s in text.split(","))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m d2tf.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="a directory written by `make convert` / `python -m d2tf.convert`")
    parser.add_argument("--sizes", type=parse_sizes, default=DEFAULT_SIZES, metavar="HxW[,HxW...]",
                        help="sizes of the synthetic verification images (default: 480x640,600x904)")
    parser.add_argument("--evaluate", metavar="COCO_DIR",
                        help="also evaluate detectron2 and the pb on a COCO-style dir (images + instances json)")
    args = parser.parse_args(argv)
    verify(args.out, args.sizes, args.evaluate)


if __name__ == "__main__":
    cli.run(main)
