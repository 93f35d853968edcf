"""Loading and writing detectron2 checkpoints without ever running code from the file.

Two formats, as detectron2 reads them:
- model-zoo `.pkl`: `{"model": {name: ndarray}, "__author__": str, "matching_heuristics": True}`, a plain pickle.
  Read through an unpickler that resolves only the numpy/builtin names such a file contains.
- training `.pth`: `{"model": state_dict of tensors, ...}` from `torch.save`. Read with `weights_only=True`,
  PyTorch's own restricted unpickler.
"""

import io
import os
import pickle

import numpy as np

from core import D2TFError
from core.files import write_atomic

# The globals a model-zoo pickle refers to. numpy 1.x pickles name `numpy.core`, numpy 2.x `numpy._core`;
# `_codecs.encode` carries array bytes in protocol-2 pickles, `_frombuffer` in protocol-5 ones.
# None of these can run arbitrary code.
_SAFE_GLOBALS = {
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
}


class _Refused(pickle.UnpicklingError):
    pass


class _ZooUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _SAFE_GLOBALS:
            raise _Refused(f"it references {module}.{name}, which a model-zoo checkpoint never contains")
        return super().find_class(module, name)


def load_weights(path):
    """Returns `{name: float32 ndarray}` of a detectron2 checkpoint (.pkl or .pth), refusing anything unsafe."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise D2TFError(f"weights file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".pkl":
        data = _load_pkl(path)
    elif ext in (".pth", ".pt"):
        data = _load_pth(path)
    else:
        raise D2TFError(f"{path}: expected a .pkl (model zoo) or .pth (detectron2 training) checkpoint")
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise D2TFError(f"{path}: not a detectron2 checkpoint (no 'model' dict of weights)")
    weights = {}
    for name, value in data["model"].items():
        array = value.numpy() if hasattr(value, "numpy") else value
        if not isinstance(array, np.ndarray):
            raise D2TFError(f"{path}: entry {name!r} is a {type(value).__name__}, not an array")
        weights[name] = array
    return weights


def _load_pkl(path):
    try:
        with open(path, "rb") as f:
            return _ZooUnpickler(f, encoding="latin1").load()
    except _Refused as e:
        raise D2TFError(f"{path}: refused to load: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as e:
        raise D2TFError(f"{path}: corrupt or not a pickle ({type(e).__name__}: {e})") from None


def _load_pth(path):
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).splitlines()[0] if str(e) else "unsafe content"
        raise D2TFError(f"{path}: refused to load: {reason}") from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise D2TFError(f"{path}: corrupt or not a torch checkpoint ({type(e).__name__})") from None


def save_pkl(weights, path, author="d2tf"):
    """Writes `{name: ndarray}` in the model-zoo pkl format, atomically (temporary name, then rename)."""
    data = {"model": dict(weights), "__author__": author, "matching_heuristics": True}
    buf = io.BytesIO()
    pickle.dump(data, buf, protocol=4)  # arrays as `_reconstruct`, like the zoo's files
    write_atomic(path, buf.getvalue())


def save_pth(weights, path):
    """Writes `{name: ndarray}` as detectron2 training does: `{"model": state_dict of tensors, "iteration": n}`."""
    import torch

    data = {"model": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}, "iteration": 0}
    buf = io.BytesIO()
    torch.save(data, buf)
    write_atomic(path, buf.getvalue())
