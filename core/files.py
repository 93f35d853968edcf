"""Reading the files stages hand each other, and writing outputs so that a failure or interruption never leaves
a half-written one."""

import contextlib
import io
import os
import shutil
import stat
import tempfile

import numpy as np

from core import D2TFError

HIDDEN = ".d2tf"  # OUT's own directory: the published sets, the lock, staging and verify's working files


def write_atomic(path, payload):
    """Writes bytes to a temporary name beside `path`, then renames it into place. A link is written through, as
    open() would: the file it points to is replaced (OUT's files are links into the published set)."""
    path = os.fspath(path)
    target = os.path.realpath(path)
    tmp = f"{target}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, target)
    except OSError as e:
        raise D2TFError(f"cannot write {path}: {e.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_regular(path, limit):
    """The bytes of the regular file at `path`, or None if it holds more than `limit`. OSError if it cannot be opened,
    ValueError if it is no regular file: a FIFO opens without waiting for a writer and /dev/zero is refused before a
    byte is read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file")
        data = os.read(fd, limit + 1)  # a regular file's read is short only at its end
    finally:
        os.close(fd)
    return data if len(data) <= limit else None


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


@contextlib.contextmanager
def hidden_work_dir(out, kind):
    """A new directory `OUT/.d2tf/<kind>-<pid>-<random>` while the block runs: on OUT's own filesystem, so a rename
    from it into OUT never crosses devices (OUT may be a mount point), and removed by the next conversion into OUT
    (remove_abandoned) when this process is killed before it can remove it."""
    hidden = os.path.join(out, HIDDEN)
    try:
        os.makedirs(hidden, exist_ok=True)
        work = tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=hidden)
    except OSError as e:
        raise D2TFError(f"cannot write into {out}: {e.strerror}") from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_abandoned(out):
    """Removes the hidden_work_dirs in OUT of processes no longer running (SIGKILL gives no chance to clean up)."""
    hidden = os.path.join(out, HIDDEN)
    for entry in os.listdir(hidden):
        parts = entry.split("-")  # <kind>-<pid>-<random>; nothing else there has three parts
        if len(parts) == 3 and parts[1].isdigit() and not _running(int(parts[1])):
            shutil.rmtree(os.path.join(hidden, entry), ignore_errors=True)


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True
