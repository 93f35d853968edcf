"""Calibrated checkpoints of several test configs from one process, so PyTorch and detectron2 are imported once
instead of once per architecture (tests/builds.py starts it at session start):

    python tests/children/calibrate_all.py a.yaml b.yaml ...   ->   a.pkl, b.pkl, ... beside each yaml, in that order

A yaml given as `undamped:b.yaml` (tests.builds.UNDAMPED_PREFIX) is calibrated with `--undamped`.

Each goes through `python -m d2tf.calibrate`'s own main and appears at once (written under another name, then
renamed), so a build may use it as soon as it exists.
"""

import os
import sys

from core import cli
from d2tf.calibrate import main
from tests.builds import UNDAMPED_PREFIX

if __name__ == "__main__":
    for arg in sys.argv[1:]:
        undamped, yaml = arg.startswith(UNDAMPED_PREFIX), arg.removeprefix(UNDAMPED_PREFIX)
        out = os.path.splitext(yaml)[0] + ".pkl"
        cli.run(main, ["--config", yaml, "--out", out + ".partial.pkl", *(["--undamped"] if undamped else [])])
        os.replace(out + ".partial.pkl", out)
