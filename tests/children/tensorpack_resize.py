"""`python tests/children/tensorpack_resize.py CLIENT OUT HxW[,HxW...]`: the image sizes tensorpack's own
predict_image resizes to (its CustomResize with cfg.PREPROC as OUT/tensorpack_config.py leaves it once the model is
built), as a JSON list of [h, w] on stdout. A TensorFlow process of its own."""

import json
import sys

import numpy as np

from runners.tensorpack_runner import predictor


def main(client, out, sizes):
    predictor(client, out)
    from common import CustomResize  # the client's, on sys.path now
    from config import config as cfg

    resize = CustomResize(cfg.PREPROC.TEST_SHORT_EDGE_SIZE, cfg.PREPROC.MAX_SIZE)
    shapes = [resize.augment(np.zeros((*map(int, s.split("x")), 3), np.uint8)).shape[:2] for s in sizes.split(",")]
    print(json.dumps([list(map(int, shape)) for shape in shapes]))


if __name__ == "__main__":
    main(*sys.argv[1:])
