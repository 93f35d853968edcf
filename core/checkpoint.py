"""Loading and writing detectron2 checkpoints without ever running code from the file.

The format is told by the content, not the extension, since files get renamed:
- `torch.save` output (a zip, or the pre-1.6 pickle sequence): read with `weights_only=True`, PyTorch's own
  restricted unpickler. Training writes `{"model": state_dict, ...}`; a bare state_dict is read as detectron2 does.
- anything else is taken for a model-zoo pickle, `{"model": {name: ndarray}, "__author__": str, ...}`, read
  through an unpickler that resolves only the numpy/builtin names such a file contains.
"""

import io
import itertools
import os
import pickle
import re
from collections import Counter

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

# Set to 1, it makes a mismatch error name every tensor instead of summarising.
VERBOSE_ENV = "D2TF_VERBOSE"

_ZIP_MAGIC = b"PK\x03\x04"  # how torch.save's default format (a zip archive) begins

# Up to this many names are listed in an error; longer lists are summarised (first names, count per module).
_LIST_ALL, _EXAMPLES, _MODULES = 6, 3, 4

# Blocks in res2..res5 of detectron2's bottleneck ResNets (build_resnet_backbone), by MODEL.RESNETS.DEPTH.
_BLOCKS_BY_DEPTH = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_BOTTLENECK_BLOCK = re.compile(r"(?:^|\.)res([2-5])\.(\d+)\.conv3\.")  # conv3 exists in bottleneck blocks only


class _Refused(pickle.UnpicklingError):
    pass


class _ZooUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _SAFE_GLOBALS:
            raise _Refused(f"it references {module}.{name}, which a model-zoo checkpoint never contains")
        return super().find_class(module, name)


def load_weights(path):
    """Returns `{name: ndarray}` of a detectron2 checkpoint, refusing anything unsafe and any tensor that is not
    numeric or holds NaN/Inf. Integer tensors pass: training checkpoints hold counters such as BN's
    `num_batches_tracked`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise D2TFError(f"weights file not found: {path}")
    state = _state_dict(path, _load(path))
    named_otherwise = [name for name in state if not isinstance(name, str)]
    if named_otherwise:
        example = _printable(repr(named_otherwise[0]))[:80]
        raise D2TFError(f"{path}: not a detectron2 checkpoint: {len(named_otherwise)} of its weights are named by "
                        f"a {type(named_otherwise[0]).__name__}, not a string (e.g. {example})")
    weights = {name: _array(path, name, value) for name, value in state.items()}
    _check_values(path, weights)
    return weights


def _load(path):
    with open(path, "rb") as f:
        if f.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC:
            return _load_torch(path)
    data = _load_pickle(path)
    return _load_torch(path) if _is_legacy_torch_magic(data) else data


def _is_legacy_torch_magic(data):
    """True for the first of the pickles torch.save wrote before PyTorch 1.6."""
    if not isinstance(data, int):
        return False
    from torch.serialization import MAGIC_NUMBER

    return data == MAGIC_NUMBER


def _load_pickle(path):
    try:
        with open(path, "rb") as f:
            return _ZooUnpickler(f, encoding="latin1").load()
    except _Refused as e:
        raise D2TFError(f"{path}: refused to load: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as e:
        raise D2TFError(f"{path}: corrupt or not a pickle ({type(e).__name__}: {' '.join(str(e).split())})") from None


def _load_torch(path):
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise D2TFError(f"{path}: refused to load: {_torch_refusal(path)}") from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise D2TFError(f"{path}: corrupt or not a torch checkpoint ({type(e).__name__})") from None


def _torch_refusal(path):
    """Why torch's weights-only loader refused the file, from a scan of its pickle that runs nothing."""
    import torch

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError):  # the scan reads only the zip format
        names = []
    if names:
        return f"it references {', '.join(names)}, which torch's weights-only loader refuses"
    return "it holds objects other than tensors, which torch's weights-only loader refuses"


def _state_dict(path, data):
    # detectron2 takes a checkpoint without "model" to be the state_dict itself (DetectionCheckpointer._load_file).
    state = data.get("model", data) if isinstance(data, dict) else data
    if not isinstance(state, dict):
        raise D2TFError(f"{path}: not a detectron2 checkpoint (a {type(state).__name__}, not a dict of weights)")
    if not state:
        raise D2TFError(f"{path}: not a detectron2 checkpoint (it holds no weights)")
    return state


def _array(path, name, value):
    if isinstance(value, np.ndarray):
        return value
    if not hasattr(value, "detach"):
        raise D2TFError(f"{path}: entry {name!r} is a {type(value).__name__}, not an array")
    tensor = value.detach()  # a saved nn.Parameter requires grad
    try:
        return tensor.numpy()
    except TypeError:  # a dtype numpy lacks: bfloat16 and float8 widen exactly to float32, the rest is refused
        if tensor.is_floating_point():
            return tensor.float().numpy()
        raise D2TFError(f"{path}: entry {name!r} has dtype {tensor.dtype}, not a number numpy can hold") from None


def _check_values(path, weights):
    non_numeric = [n for n, a in weights.items() if a.dtype.kind not in "biuf"]
    # the model computes in float32: a float64 value beyond its range (1e39) would become Inf there
    non_finite = [n for n, a in weights.items()
                  if a.dtype.kind == "f" and not np.isfinite(a.astype(np.float32, copy=False)).all()]
    problems = []
    if non_numeric:
        listing = _listing(non_numeric, lambda n: f"{n} ({weights[n].dtype})")
        problems.append(f"non-numeric values in {_plural(len(non_numeric), 'tensor')}: {listing}")
    if non_finite:
        problems.append(f"non-finite values (NaN/Inf, or beyond float32's range) in "
                        f"{_plural(len(non_finite), 'tensor')}: {_listing(non_finite)}")
    if problems:
        raise D2TFError(f"{path}: " + "; ".join(problems))


def describe_mismatch(expected, found, full=False):
    """Why checkpoint tensors `found` ({name: shape}) do not fit a model's `expected` ones, or None if they do.
    Long name lists are summarised unless `full`. Anchor buffers are exempt: detectron2 recomputes them."""
    missing = [n for n in expected if n not in found]
    unexpected = [n for n in found if n not in expected and "cell_anchors" not in n]
    misshapen = [n for n in expected if n in found and tuple(found[n]) != tuple(expected[n])]
    problems = [
        f"{label}: {_listing(names, detail, full)}"
        for label, names, detail in (
            ("missing", missing, str),
            ("unexpected", unexpected, str),
            ("wrong shape", misshapen, lambda n: f"{n} {tuple(found[n])} (model has {tuple(expected[n])})"),
        )
        if names
    ]
    if not problems:
        return None
    weights_depth, config_depth = _resnet_depth(found), _resnet_depth(expected)
    if weights_depth and config_depth and weights_depth != config_depth:
        problems.append(f"these look like MODEL.RESNETS.DEPTH {weights_depth} weights, the config has {config_depth}")
    if not full and max(len(missing), len(unexpected), len(misshapen)) > _LIST_ALL:
        problems.append(f"{VERBOSE_ENV}=1 lists every name")
    return "weights do not match the config: " + "; ".join(problems)


def _listing(names, detail=str, full=False):
    """`a, b` in full, or when long the first few and the count per module: `a, b, c and 9 more (m: 12)`. Names come
    from the file: printed escaped (_printable)."""
    names = sorted(names, key=_natural)
    if full or len(names) <= _LIST_ALL:
        return ", ".join(_printable(detail(n)) for n in names)
    modules = Counter(map(_module, names)).most_common()
    counts = ", ".join(f"{_printable(m)}: {c}" for m, c in modules[:_MODULES])
    if len(modules) > _MODULES:
        counts += f" and {_plural(len(modules) - _MODULES, 'more module')}"
    examples = ", ".join(_printable(detail(n)) for n in names[:_EXAMPLES])
    return f"{examples} and {len(names) - _EXAMPLES} more ({counts})"


def _printable(text):
    """`text` with line breaks, terminal escapes and other unprintable characters as Python escapes: a name in a
    file must not print a line, or a colour, of its own."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _plural(count, noun):
    return f"{count} {noun}" + ("s" if count != 1 else "")


def _natural(name):
    """Sort key putting `res4.6` before `res4.10`."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in name.split(".")]


def _module(name):
    """The module a tensor name belongs to, for counting: its path without the layer and parameter names, cut
    before block indices, at most 3 deep (`backbone.bottom_up.res4.6.conv1.weight` -> `backbone.bottom_up.res4`)."""
    parts = name.split(".")
    path = list(itertools.takewhile(lambda p: not p.isdigit(), parts[:-2]))[:3]
    return ".".join(path) or parts[0]


def _resnet_depth(names):
    """MODEL.RESNETS.DEPTH of the bottleneck ResNet whose blocks these tensor names hold, or None."""
    blocks = Counter()
    for match in filter(None, map(_BOTTLENECK_BLOCK.search, names)):
        stage, index = int(match[1]), int(match[2])
        blocks[stage] = max(blocks[stage], index + 1)
    counts = tuple(blocks[stage] for stage in (2, 3, 4, 5))
    return next((depth for depth, table in _BLOCKS_BY_DEPTH.items() if table == counts), None)


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
