"""`python -m runners.tensorpack_runner CLIENT OUT images.npz outputs.npz`: tensorpack's own FasterRCNN model on
OUT/model.npz, configured by OUT/tensorpack_config.py, on the images of an npz. CLIENT is a tensorpack
examples/FasterRCNN checkout, run unmodified. Outputs as the pb's: output/boxes, output/scores, output/labels
(1-based), output/masks."""

import importlib.util
import logging
import os
import sys

from core import D2TFError, cli, contract
from core.model_info import ModelInfo
from runners import lowered, on_npz

# Set before TensorFlow is imported: tensorpack's layers need Keras 2, and its NCHW layers run on a CPU only through
# oneDNN, which TF does not enable by default on every CPU ("Default MaxPoolingOp only supports NHWC").
TENSORPACK_ENV = {"TF_USE_LEGACY_KERAS": "1", "TF_ENABLE_ONEDNN_OPTS": "1"}
for _key, _value in TENSORPACK_ENV.items():
    os.environ.setdefault(_key, _value)


def check_client(client_dir):
    """Raises D2TFError unless `client_dir` holds tensorpack's examples/FasterRCNN."""
    wanted = ("config.py", os.path.join("modeling", "generalized_rcnn.py"), os.path.join("dataset", "dataset.py"))
    missing = [w for w in wanted if not os.path.isfile(os.path.join(client_dir, w))]
    if missing:
        raise D2TFError(f"{client_dir} is not a tensorpack examples/FasterRCNN checkout (no {', '.join(missing)})")


def check_inputs(client_dir, out_dir):
    """Raises D2TFError unless the client is there and out_dir holds what this runner reads."""
    check_client(client_dir)
    for name in (contract.NPZ, contract.TENSORPACK_CONFIG):
        if not os.path.isfile(os.path.join(out_dir, name)):
            raise D2TFError(f"{out_dir} has no {name}: the conversion wrote no tensorpack npz, or the directory "
                            "is incomplete; convert again, or leave out --tensorpack")


def predictor(client_dir, out_dir, lower_from=None):
    """A callable image -> {output: ndarray}: tensorpack's model as out_dir's tensorpack_config.py (the module
    tensorpack users import) builds it, restores model.npz into it and runs it (frozen); with `lower_from` (the
    model info's score threshold), with the threshold its flags give checked, then lowered (runners/lowered.py)."""
    check_inputs(client_dir, out_dir)
    sys.path.insert(0, os.path.abspath(client_dir))
    path = os.path.join(out_dir, contract.TENSORPACK_CONFIG)
    spec = importlib.util.spec_from_file_location("tensorpack_config", path)
    settings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(settings)
    if lower_from is not None:
        _lower(settings, lower_from)
    with _SmartInitMismatch() as mismatch:
        model = settings.predictor(os.path.join(out_dir, contract.NPZ))
    if mismatch.messages:
        raise D2TFError("tensorpack's SmartInit: " + "; ".join(m[:300] for m in mismatch.messages))
    from config import config as cfg  # the client's, configured by settings.predictor

    outputs = contract.pb_outputs(contract.served_outputs(contract.onnx_outputs(mask=cfg.MODE_MASK)))
    return lambda image: dict(zip(outputs, model(image)))


def _lower(settings, expected):
    """tensorpack_config's FLAGS with TEST.RESULT_SCORE_THRESH lowered, once the threshold they set (tensorpack's
    default where they set none) is checked."""
    from config import config as cfg  # the client's, with tensorpack's defaults until configure() applies FLAGS

    key = "TEST.RESULT_SCORE_THRESH"
    given = [float(flag.split("=", 1)[1]) for flag in settings.FLAGS if flag.startswith(key + "=")]
    lowered.check(given[-1:] or [cfg.TEST.RESULT_SCORE_THRESH], expected, contract.TENSORPACK_CONFIG)
    settings.FLAGS = [*settings.FLAGS, f"{key}={contract.LOWERED_SCORE_THRESHOLD!r}"]


class _SmartInitMismatch(logging.Handler):
    """Collects tensorpack's warnings that a variable is in the graph but not the npz, or the reverse (SmartInit
    only warns: the model would run with those variables uninitialised or ignored), and keeps tensorpack's info
    lines (its whole config, every variable restored) out of the progress."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        if "not found in the" in record.getMessage():
            self.messages.append(record.getMessage())

    def __enter__(self):
        logger = logging.getLogger("tensorpack")
        self.level = logger.level
        logger.setLevel(logging.WARNING)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        logger = logging.getLogger("tensorpack")
        logger.removeHandler(self)
        logger.setLevel(self.level)


def predict(client_dir, out_dir, images, lower_from=None):
    """{image key: {output: ndarray}} for {image key: HxWx3 float32 image} (already resized) in the model's
    INPUT.FORMAT, as the pb takes them: tensorpack's model takes BGR."""
    model = predictor(client_dir, out_dir, lower_from)
    rgb = ModelInfo.read(os.path.join(out_dir, contract.MODEL_JSON)).input.format == "RGB"
    return {key: model(image[:, :, ::-1] if rgb else image) for key, image in images.items()}


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m runners.tensorpack_runner", description=__doc__.splitlines()[0])
    parser.add_argument("client", help="tensorpack's examples/FasterRCNN directory")
    parser.add_argument("out", help="a d2tf conversion (model.npz, tensorpack_config.py)")
    parser.add_argument("images", help="npz of HxWx3 float32 images in the model's INPUT.FORMAT (as the pb's)")
    parser.add_argument("outputs", help="npz to write, entries <image key>/<output>")
    parser.add_argument(lowered.ARGUMENT, type=float, metavar="FROM", dest="lower_from", help=lowered.ARGUMENT_HELP)
    args = parser.parse_args(argv)
    on_npz(args.images, args.outputs, "tensorpack's model",
           lambda images: predict(args.client, args.out, images, args.lower_from))


if __name__ == "__main__":
    cli.run(main)
