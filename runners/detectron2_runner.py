"""`python -m runners.detectron2_runner`: detectron2's own outputs (PyTorch) on the images of an npz, for verify
and evaluate.

The outputs are export's interface (boxes, scores, 0-based classes, masks [N,M,M]) on the image as given, so they
compare one to one with the ONNX graphs and the pb run on the same image. With --as-they-come, the images are uint8
RGB photos and detectron2 does what its DefaultPredictor does: its test resize, the model, its postprocessing
(boxes in image pixels, masks [N,H,W] pasted at image size), to compare with the SavedModel's serving signature.
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


def predict_as_they_come(model, cfg, image):
    """{output name: ndarray} of detectron2's whole inference on one HxWx3 uint8 RGB image, as DefaultPredictor."""
    from detectron2.data import transforms

    if cfg.INPUT.FORMAT == "BGR":
        image = image[:, :, ::-1]
    height, width = image.shape[:2]
    resize = transforms.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    resized = resize.get_transform(image).apply_image(image)
    with torch.no_grad():
        tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
        instances = model([{"image": tensor, "height": height, "width": width}])[0]["instances"]
    outputs = {"boxes": instances.pred_boxes.tensor.numpy(), "scores": instances.scores.numpy(),
               "classes": instances.pred_classes.numpy()}
    if instances.has("pred_masks"):
        outputs["masks"] = instances.pred_masks.numpy().astype(np.uint8)
    return outputs


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m runners.detectron2_runner", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--images", required=True, help="npz of HxWx3 float32 BGR images (uint8 RGB with "
                        "--as-they-come)")
    parser.add_argument("--out", required=True, help="npz to write, entries <image key>/<output>")
    parser.add_argument("--as-they-come", action="store_true",
                        help="resize and postprocess as detectron2's DefaultPredictor does")
    args = parser.parse_args(argv)
    cfg = zoo.load_config(args.config)
    with cli.step("building detectron2's model"):
        model = build_model(cfg, checkpoint.load_weights(args.weights))
    outputs = {}
    with np.load(args.images) as images, cli.step(f"running detectron2 (PyTorch) on {len(images.files)} images"):
        for key in images.files:
            outputs[key] = predict_as_they_come(model, cfg, images[key]) if args.as_they_come else \
                predict(model, images[key])
    save_outputs(args.out, outputs)


if __name__ == "__main__":
    cli.run(main)
