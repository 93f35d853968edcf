"""Reading the files stages hand each other, and writing outputs so that a failure or interruption never leaves
a half-written one."""

import os

from d2tf import D2TFError


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
