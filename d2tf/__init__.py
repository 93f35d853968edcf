"""Shared pieces of the d2tf pipeline (export -> graphfix -> tf_import).

Modules here must stay importable on both sides of the PyTorch/TensorFlow process boundary: anything that needs
torch or detectron2 imports it inside the module that uses it (zoo, calibrate), never at package level.
"""

__version__ = "0.1.0"


class D2TFError(Exception):
    """A problem the user can fix (bad path, unsupported config, unsafe file). Printed as one line, no traceback."""
