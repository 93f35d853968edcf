"""`python -m runners.detectron2_runner`: detectron2's own outputs (PyTorch) on the images of an npz, for verify
and evaluate.

The outputs are export's interface (boxes, scores, 0-based classes, masks [N,M,M]) on the image as given, so they
compare one to one with the ONNX graphs and the pb run on the same image.
"""


import numpy as np
import torch

from core import checkpoint, cli, zoo
from core.contract import onnx_outputs
from core.files import save_outputs
from export.model import ExportWrapper, build_model


def predict(model, image):
    """{output name: ndarray} of detectron2 on one HxWx3 float32 BGR image."""
    with torch.no_grad():
        values = ExportWrapper(model)(torch.from_numpy(np.ascontiguousarray(image, np.float32)))
    return {name: value.numpy() for name, value in zip(onnx_outputs(len(values) == 4), values)}


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m runners.detectron2_runner", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--images", required=True, help="npz of HxWx3 float32 BGR images")
    parser.add_argument("--out", required=True, help="npz to write, entries <image key>/<output>")
    args = parser.parse_args(argv)
    with cli.step("building detectron2's model"):
        model = build_model(zoo.load_config(args.config), checkpoint.load_weights(args.weights))
    outputs = {}
    with np.load(args.images) as images, cli.step(f"running detectron2 (PyTorch) on {len(images.files)} images"):
        for key in images.files:
            outputs[key] = predict(model, images[key])
    save_outputs(args.out, outputs)


if __name__ == "__main__":
    cli.run(main)
