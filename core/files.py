"""Reading the files stages hand each other, and writing outputs so that a failure or interruption never leaves
a half-written one."""

import io
import os

import numpy as np

from core import D2TFError


def write_atomic(path, payload):
    """Writes bytes to a temporary name beside `path`, then renames it into place."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except OSError as e:
        raise D2TFError(f"cannot write {path}: {e.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_onnx(path):
    """The ONNX model at `path`, or one clear error (the stages after export all start here)."""
    import onnx

    if not os.path.isfile(path):
        raise D2TFError(f"ONNX file not found: {path}")
    try:
        return onnx.load(path)
    except Exception as e:  # protobuf raises DecodeError and others
        raise D2TFError(f"{path}: not an ONNX model ({type(e).__name__})") from None


def save_outputs(path, outputs):
    """Writes {image key: {output name: array}} as one npz with `<key>/<output>` entries: the format in which the
    PyTorch and TensorFlow processes hand their results back."""
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{key}/{name}": value for key, named in outputs.items() for name, value in named.items()})
    write_atomic(path, buffer.getvalue())


def load_outputs(path):
    outputs = {}
    with np.load(path) as npz:
        for entry in npz.files:
            key, name = entry.split("/")
            outputs.setdefault(key, {})[name] = npz[entry]
    return outputs
