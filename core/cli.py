"""What every d2tf command line shares: one-line errors and timed progress on stderr."""

import argparse
import contextlib
import sys
import time
import warnings

from core import D2TFError


def log(msg):
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(name):
    """Prints `name ...` and then its duration, so long steps show progress."""
    log(f"[d2tf] {name} ...")
    start = time.perf_counter()
    yield
    log(f"[d2tf] {name}: done in {time.perf_counter() - start:.1f} s")


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line, `error: <prog>: <message>`, exit status 2, as every other
    d2tf failure (argparse prints the whole usage block first)."""

    def error(self, message):
        log(f"error: {self.prog}: {message} (see --help)")
        sys.exit(2)


# The largest side of an image d2tf makes up (trace, verification and benchmark images): the zoo's largest test resize
# is 1333 px, and TensorFlow takes about 4 KB per pixel on an R50 model, so 2048 x 2048 is already 16 GB.
MAX_SIDE = 2048


def parse_size(text):
    """argparse type for HEIGHTxWIDTH, both positive and at most MAX_SIDE."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        height = width = 0  # reported below, with the sizes that are not positive
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE):
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH of positive numbers up to {MAX_SIDE}, e.g. 512x640, "
                                         f"got {text[:40]!r}")
    return height, width


def run(main, argv=None):
    """Runs `main(argv)`; a D2TFError becomes `error: <message>` and its exit status (2 unless a subclass says
    otherwise) instead of a traceback."""
    # torch, detectron2 and their dependencies warn about their own deprecations on import; users cannot act on it.
    for module in ("torch", "detectron2", "fvcore", "iopath", "pkg_resources", "onnx"):
        warnings.filterwarnings("ignore", module=module)
    try:
        main(argv)
    except D2TFError as e:
        log(f"error: {e}")
        sys.exit(e.exit_status)
    except KeyboardInterrupt:
        log("error: interrupted")
        sys.exit(130)
