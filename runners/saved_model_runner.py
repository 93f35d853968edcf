"""`python -m runners.saved_model_runner saved_model images.npz outputs.npz`: OUT/saved_model (tf.saved_model.load)
on the images of an npz. Its serving signature takes uint8 RGB images as they come; its outputs are saved in the
ONNX interface at image size (core.contract.serving_to_detections): boxes in image pixels, 0-based classes, masks
[N, H, W] uint8. With `--signature tensorpack`, the pb's interface: float32 BGR images in, the pb's outputs out."""


from core import cli, contract
from runners import on_npz


def predict(path, images, signature=contract.SERVING_SIGNATURE):
    """{image key: outputs} for {image key: image} through one of the SavedModel's signatures."""
    import tensorflow as tf

    function = tf.saved_model.load(path).signatures[signature]
    results = {}
    for key, image in images.items():
        if signature == contract.TENSORPACK_SIGNATURE:
            results[key] = {k: v.numpy() for k, v in function(**{contract.INPUT: tf.constant(image)}).items()}
        else:
            outputs = function(**{contract.SERVING_INPUT: tf.constant(image[None])})
            results[key] = contract.serving_to_detections({k: v.numpy() for k, v in outputs.items()},
                                                          *image.shape[:2])
    return results


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m runners.saved_model_runner", description=__doc__.splitlines()[0])
    parser.add_argument("saved_model")
    parser.add_argument("images", help="npz of HxWx3 uint8 RGB images (float32 BGR for the tensorpack signature)")
    parser.add_argument("out", help="npz to write, entries <image key>/<output>")
    parser.add_argument("--signature", choices=[contract.SERVING_SIGNATURE, contract.TENSORPACK_SIGNATURE],
                        default=contract.SERVING_SIGNATURE)
    args = parser.parse_args(argv)
    on_npz(args.images, args.out, "the SavedModel (TensorFlow)",
           lambda images: predict(args.saved_model, images, args.signature))


if __name__ == "__main__":
    cli.run(main)
