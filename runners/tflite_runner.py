"""`python -m runners.tflite_runner model.tflite images.npz outputs.npz`: OUT/model.tflite in tf.lite.Interpreter
on the images of an npz, through its serving_default signature (the pb's interface: float32 BGR image in;
boxes, scores, labels (1-based), masks out, padded, with num_detections). The input is resized to each image's
size; the outputs saved are the detections only, as the pb's."""

import os

from core import D2TFError, cli, contract
from core.contract import NUM_DETECTIONS
from runners import lowered, on_npz


def signature(path, threads=None, lower_from=None):
    """The model's serving_default signature runner; `threads` for the interpreter (default: TFLite's); with
    `lower_from` (the model info's score threshold), of the model with that threshold checked and lowered
    (runners/lowered.py)."""
    import warnings

    import tensorflow as tf

    try:
        with warnings.catch_warnings():  # its deprecation in favour of LiteRT (ai-edge-litert), a page long
            warnings.simplefilter("ignore", UserWarning)
            if lower_from is None:
                interpreter = tf.lite.Interpreter(model_path=path, num_threads=threads)
            else:
                with open(path, "rb") as f:
                    content = lowered.tflite_model(f.read(), lower_from, os.path.basename(path))
                interpreter = tf.lite.Interpreter(model_content=content, num_threads=threads)
    except ValueError as e:
        raise D2TFError(f"cannot load the TFLite model {path}: {e}") from None
    return interpreter.get_signature_runner()


def detections(run, image):
    """{output: ndarray} of one HxWx3 float32 BGR image, cut to its num_detections rows."""
    outputs = run(**{contract.INPUT: image})
    count = int(outputs.pop(NUM_DETECTIONS)[0])
    return {key: value[:count].copy() for key, value in outputs.items()}


def predict(path, images, lower_from=None):
    """{image key: {output: ndarray}} for {image key: HxWx3 float32 BGR image}."""
    run = signature(path, lower_from=lower_from)
    return {key: detections(run, image) for key, image in images.items()}


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m runners.tflite_runner", description=__doc__.splitlines()[0])
    parser.add_argument("tflite")
    parser.add_argument("images", help="npz of HxWx3 float32 BGR images")
    parser.add_argument("out", help="npz to write, entries <image key>/<output>")
    parser.add_argument(lowered.ARGUMENT, type=float, metavar="FROM", dest="lower_from", help=lowered.ARGUMENT_HELP)
    args = parser.parse_args(argv)
    on_npz(args.images, args.out, f"{os.path.basename(args.tflite)} (TFLite)",
           lambda images: predict(args.tflite, images, args.lower_from))


if __name__ == "__main__":
    cli.run(main)
