"""The bottom layer every d2tf package imports from: errors, files, command-line helpers, config and checkpoint
loading, the input/output contract and the metadata stages hand each other inside their files.

Modules here must stay importable on both sides of the PyTorch/TensorFlow process boundary: anything that needs
torch or detectron2 imports it inside the function that uses it, never at module level.
"""

__version__ = "0.1.0"


class D2TFError(Exception):
    """A problem the user can fix (bad path, unsupported config, unsafe file). Printed as one line, no traceback,
    and the process exits with `exit_status`."""

    exit_status = 2
