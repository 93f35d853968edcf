"""Calibrated checkpoints of several test configs from one process, so PyTorch and detectron2 are imported once
instead of once per architecture (tests/builds.py starts it at session start):

    python tests/children/calibrate_all.py a.yaml b.yaml ...   ->   a.pkl, b.pkl, ... beside each yaml, in that order

Each goes through `python -m d2tf.calibrate`'s own main and appears at once (written under another name, then
renamed), so a build may use it as soon as it exists.
"""

import os
import sys

from core import cli
from d2tf.calibrate import main

if __name__ == "__main__":
    for yaml in sys.argv[1:]:
        out = os.path.splitext(yaml)[0] + ".pkl"
        cli.run(main, ["--config", yaml, "--out", out + ".partial.pkl"])
        os.replace(out + ".partial.pkl", out)
