"""`d2tf export`: detectron2 config + weights -> <out>/model.onnx and <out>/model.json."""

import os

import onnx

from core import checkpoint, cli, contract, zoo
from core.class_names import read_class_names
from core.cli import parse_size
from core.files import write_atomic
from core.synthetic import synthetic_image
from export.info import model_info
from export.model import build_model
from export.supported import check_supported
from export.trace import add_provenance, trace_to_onnx


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="d2tf export",
        description="Export a detectron2 detector (an R-CNN or RetinaNet that d2tf supports) to ONNX.",
        epilog="Reads the config (a model-zoo name, a d2tf/... name, or a .yaml with its _BASE_ files) and the "
        "weights (.pkl or .pth). Writes OUT/model.onnx and OUT/model.json (a readable copy of its model info).",
    )
    parser.add_argument("--config", required=True, help="model-zoo name (e.g. %s), d2tf/... name, or yaml path"
                        % zoo.DEFAULT_EXAMPLE)
    parser.add_argument("--weights", required=True, help="model_final_*.pkl (model zoo) or .pth (training)")
    parser.add_argument("--out", required=True, help="output directory for model.onnx and model.json")
    parser.add_argument("--trace-size", type=parse_size, default=(512, 640), metavar="HxW",
                        help="size of the synthetic image traced through the model (the ONNX takes any size)")
    parser.add_argument("--class-names", metavar="FILE", help="the model's class names: a text file, one a line in "
                        "class order, or a COCO json (its categories by id); default: the config's test dataset's, "
                        "when detectron2 knows it")
    args = parser.parse_args(argv)
    export(args.config, args.weights, args.out, args.trace_size, args.class_names)


def export(config, weights_path, out_dir, trace_size=(512, 640), class_names_path=None):
    """Runs the export stage; returns the paths written."""
    names = read_class_names(class_names_path) if class_names_path else None
    with cli.step("checking config"):
        cfg = zoo.load_config(config)
        arch, tuned = check_supported(cfg)
        cli.log(f"[d2tf] architecture: {arch.name}" + "".join(f"; tuned {key}={value}" for key, value in tuned.items()))
    with cli.step(f"loading weights {weights_path}"):
        weights = checkpoint.load_weights(weights_path)
        info = model_info(cfg, (arch, tuned), config, weights_path, trace_size, names)
        model = build_model(cfg, weights)
    with cli.step(f"tracing at {trace_size[0]}x{trace_size[1]}"):
        proto = trace_to_onnx(model, synthetic_image(*trace_size))
    add_provenance(proto, info)
    with cli.step("checking ONNX"):
        onnx.checker.check_model(proto, full_check=True)
    os.makedirs(out_dir, exist_ok=True)
    onnx_path, json_path = os.path.join(out_dir, contract.ONNX), os.path.join(out_dir, contract.MODEL_JSON)
    write_atomic(onnx_path, proto.SerializeToString())
    write_atomic(json_path, (info.to_json(indent=2) + "\n").encode())
    cli.log(f"[d2tf] wrote {onnx_path} ({os.path.getsize(onnx_path) / 2**20:.0f} MiB, {len(proto.graph.node)} nodes)"
            f" and {json_path}")
    return onnx_path, json_path

