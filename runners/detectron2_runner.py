"""`python -m runners.detectron2_runner`: detectron2's own outputs (PyTorch) on the images of an npz, for verify
and evaluate.

The outputs are export's interface (boxes, scores, 0-based classes, masks [N,M,M]) on the image as given, so they
compare one to one with the ONNX graphs and the pb run on the same image. With --photos, the same model also runs on
uint8 RGB photos as they come, as detectron2's DefaultPredictor runs it: its test resize, the model, its
postprocessing (boxes in image pixels, masks [N,H,W] pasted at image size), to compare with the SavedModel's serving
signature.
"""


import numpy as np
import torch

from core import checkpoint, cli, zoo
from core.contract import LOWERED_SCORE_THRESHOLD
from export.model import ExportWrapper, build_model
from runners import lowered, on_npz


def predict(model, image):
    """{output name: ndarray} of detectron2 on one HxWx3 float32 BGR image."""
    wrapper = ExportWrapper(model)
    with torch.no_grad():
        values = wrapper(torch.from_numpy(np.ascontiguousarray(image, np.float32)))
    values = values if isinstance(values, tuple) else (values,)
    return {name: value.numpy() for name, value in zip(wrapper.outputs, values)}


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
    parser.add_argument("--images", help="npz of HxWx3 float32 BGR images")
    parser.add_argument("--out", help="npz to write, entries <image key>/<output>")
    parser.add_argument("--photos", help="npz of HxWx3 uint8 RGB photos, run as DefaultPredictor runs them")
    parser.add_argument("--photos-out", help="npz to write the photos' outputs to")
    parser.add_argument("--native-convolutions", action="store_true", help="run the images with PyTorch's native "
                        "convolutions instead of oneDNN's: another valid float32 evaluation, whose distance from the "
                        "usual one is the model's own round-off noise")
    parser.add_argument(lowered.ARGUMENT, type=float, metavar="FROM", dest="lower_from",
                        help=lowered.ARGUMENT_HELP + " on the images (the photos run at the model's own threshold)")
    args = parser.parse_args(argv)
    pairs = [(args.images, args.out), (args.photos, args.photos_out)]
    if any(bool(given) != bool(out) for given, out in pairs) or not any(given for given, _ in pairs):
        parser.error("give --images with --out, --photos with --photos-out, or both pairs")
    cfg = zoo.load_config(args.config)
    with cli.step("building detectron2's model"):
        model = build_model(cfg, checkpoint.load_weights(args.weights))
    if args.images:
        if args.lower_from is not None:
            lowered.check(lowered.detectron2_model(model, LOWERED_SCORE_THRESHOLD), args.lower_from,
                          "detectron2's model")
        native = " with PyTorch's native convolutions" if args.native_convolutions else ""
        with torch.backends.mkldnn.flags(enabled=not args.native_convolutions):
            on_npz(args.images, args.out, f"detectron2 (PyTorch){native}",
                   lambda images: {key: predict(model, image) for key, image in images.items()})
    if args.photos:
        if args.lower_from is not None:
            lowered.detectron2_model(model, args.lower_from)
        on_npz(args.photos, args.photos_out, "detectron2's whole inference",
               lambda photos: {key: predict_as_they_come(model, cfg, photo) for key, photo in photos.items()})


if __name__ == "__main__":
    cli.run(main)
