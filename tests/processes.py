"""The checkout, the folder of the scripts tests run as child processes (tests/children), and run_python, which
starts one: TensorFlow never runs in the PyTorch test process."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILDREN = os.path.join(ROOT, "tests", "children")


def run_python(*args, **environ):
    """A Python subprocess of this venv (TensorFlow work must not share the PyTorch test process)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, **environ)
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env)
