"""Loading and writing detectron2 checkpoints without ever running code from the file.

The format is told by the content, not the extension, since files get renamed:
- `torch.save` output (a zip, or the pre-1.6 pickle sequence): read with `weights_only=True`, PyTorch's own
  restricted unpickler. Training writes `{"model": state_dict, ...}`; a bare state_dict is read as detectron2 does.
- anything else is taken for a model-zoo pickle, `{"model": {name: ndarray}, "__author__": str, ...}`, read
  through an unpickler that resolves only the numpy/builtin names such a file contains.

What a file declares is bounded before it is built (docs/security.md gives each bound with its reason): the nesting
and memo of its pickles from their opcodes alone, the sizes a torch zip's entries declare, and the element count of
its tensors against the file's size before any is read.
"""

import io
import itertools
import mmap
import os
import pickle
import pickletools
import re
import zipfile
from collections import Counter

import numpy as np

from core import D2TFError
from core.files import write_atomic

# The globals a model-zoo pickle refers to. numpy 1.x pickles name `numpy.core`, numpy 2.x `numpy._core`;
# `_codecs.encode` carries array bytes in protocol-2 pickles, `_frombuffer` in protocol-5 ones.
# None of these can run arbitrary code; the ones in _GUARDED resolve to the guarded stand-ins below.
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


# Objects a checkpoint's pickle nests in one another: zoo and torch files nest at most 13 deep, and Python hashes a
# tuple recursively, so a name nested 200,000 deep crashes the interpreter as the dict holding it is built.
_DEEPEST = 100
# Opcodes of a checkpoint's pickles, which _check_pickles reads at a few microseconds each: an R101 training
# checkpoint has 17,000, about 32 per tensor.
_MOST_OPCODES = 1_000_000


class _Refused(pickle.UnpicklingError):
    pass


class _NdarrayType:
    """What `numpy.ndarray` resolves to in a zoo pickle: the type it asks `_reconstruct` for. Called, as no zoo pickle
    does, numpy.ndarray would make an array of any size over a few bytes (strides 0), or allocate it."""

    def __call__(self, *args):
        raise _Refused("it calls numpy.ndarray, which a model-zoo checkpoint never does")


def _reconstruct(subtype, shape, dtype):
    """numpy's `_reconstruct` as zoo pickles call it, `(ndarray, (0,), b'b')`: an empty array that the pickle's state
    then fills, from bytes the file holds. numpy's own would first allocate `shape`, which the file does not bound."""
    if not isinstance(subtype, _NdarrayType):
        raise _Refused("its numpy._reconstruct makes something other than numpy.ndarray")
    return np.empty(0, dtype)


def _encode(text, encoding):
    """`_codecs.encode` as protocol-2 pickles call it, for the bytes they hold: `(text, 'latin1')`."""
    if encoding != "latin1" or not isinstance(text, str):
        raise _Refused(f"its _codecs.encode asks for codec {_printable(repr(encoding))[:40]}, not latin1")
    return text.encode("latin1")


_GUARDED = {("numpy", "ndarray"): _NdarrayType(), ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct, ("_codecs", "encode"): _encode}


class _ZooUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _SAFE_GLOBALS:
            raise _Refused(f"it references {module}.{name}, which a model-zoo checkpoint never contains")
        return _GUARDED.get((module, name)) or super().find_class(module, name)


# Opcodes that add to the object below their arguments on the stack rather than make a new one.
_IN_PLACE = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}


def _check_pickles(stream, count):
    """Refuses, from the opcodes of the next `count` pickles in `stream` alone (nothing is built), more than
    _MOST_OPCODES of them, objects nested deeper than _DEEPEST and a memo index beyond those written so far (pickle
    writes them in order; the C unpickler allocates a memo twice as long as the index, 32 GB for 2**31). ValueError
    for a pickle that is not one."""
    opcodes = itertools.count(1)
    for _ in range(count):
        depths, marks, memo = [], [], {}  # the stack as nesting depths; where its marks are; the memo's depths
        for op, arg, _ in pickletools.genops(stream):
            if next(opcodes) > _MOST_OPCODES:
                raise _Refused(f"its pickles hold more than {_MOST_OPCODES} opcodes")
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                index = len(memo) if arg is None else arg
                if index > len(memo):
                    raise _Refused(f"its pickle writes memo entry {index} after only {len(memo)}")
                memo[index] = depths[-1] if depths else 0
            elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                depths.append(memo.get(arg, 0))
            elif _nest(op, depths, marks) > _DEEPEST:
                raise _Refused(f"its pickle nests objects more than {_DEEPEST} deep")


def _nest(op, depths, marks):
    """Applies opcode `op` to a stack of nesting depths, `depths`, whose marks are at `marks`: takes its arguments
    off, puts its results on one level deeper than the deepest argument (what an in-place opcode adds to stays as deep
    unless what it adds is deeper), and returns that depth."""
    before = op.stack_before
    if pickletools.markobject in before:  # what is above the last mark, and what lies below it
        start = (marks.pop() if marks else 0) - before.index(pickletools.markobject)
    else:
        start = len(depths) - len(before)
    start = max(start, 0)  # a stack that runs short: the unpickler refuses such a pickle itself
    taken, depths[start:] = depths[start:], []
    if op.name in _IN_PLACE and taken:
        depth = max(taken[0], 1 + max(taken[1:], default=0))
    else:
        depth = 1 + max(taken, default=0)
    for item in op.stack_after:
        if item is pickletools.markobject:
            marks.append(len(depths))
        else:
            depths.append(depth)
    return depth


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
    for name, value in state.items():
        _check_kind(path, name, value)
    _check_element_count(path, state)
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


def _mapped(path):
    """The file's bytes, mapped: reading a length a pickle declares returns what the file holds, where a file object
    would first allocate the length. _check_pickles reads them so, and then the unpickler asks only for lengths the
    file holds."""
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def _load_pickle(path):
    try:
        with _mapped(path) as data:
            _check_pickles(data, 1)
        with open(path, "rb") as f:
            return _ZooUnpickler(f, encoding="latin1").load()
    except _Refused as e:
        raise D2TFError(f"{path}: refused to load: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as e:
        why = _printable(" ".join(str(e).split()))[:200]  # pickle's messages quote the file, and span lines
        raise D2TFError(f"{path}: corrupt or not a pickle ({type(e).__name__}: {why})") from None


def _load_torch(path):
    import torch

    try:
        _check_torch_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except _Refused as e:
        raise D2TFError(f"{path}: refused to load: {e}") from None
    except pickle.UnpicklingError as e:
        raise D2TFError(f"{path}: refused to load: {_torch_refusal(path, e)}") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise D2TFError(f"{path}: corrupt or not a torch checkpoint ({type(e).__name__})") from None


def _check_torch_file(path):
    """What a torch file declares, checked before torch builds it: its pickles (_check_pickles) and, in a zip, the
    sizes of its entries, which torch stores uncompressed: more bytes than the file has would be a compressed storage
    that inflates to gigabytes."""
    with _mapped(path) as data:
        if data[:len(_ZIP_MAGIC)] != _ZIP_MAGIC:
            _check_pickles(data, 5)  # the pre-1.6 format: magic number, protocol, system, objects, storage keys
            return
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        declared, size = sum(entry.file_size for entry in entries), os.path.getsize(path)
        if declared > size:
            raise _Refused(f"its zip entries declare {declared} bytes, more than the file's {size}")
        for entry in entries:
            if entry.filename.endswith(".pkl"):
                _check_pickles(io.BytesIO(archive.read(entry)), 1)


def _torch_refusal(path, error):
    """Why torch's weights-only loader refused the file: the globals it names, from a scan of its pickle that runs
    nothing, or torch's own reason."""
    import torch

    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError, pickle.UnpicklingError):  # the scan reads only the zip format, at protocol 2
        names = []
    if names:
        return f"it references {', '.join(names)}, which torch's weights-only loader refuses"
    operand = re.search(r"Unsupported operand (\d+)", str(error))
    opcode = operand and pickletools.code2op.get(chr(int(operand[1])))
    if opcode and opcode.proto > 2:  # torch reads the opcodes of pickle protocol 2, its default, and no later ones
        return (f"it was saved with pickle protocol {opcode.proto} (opcode {opcode.name}), which torch's weights-only "
                "loader does not read: save it again with torch.save's default protocol")
    paragraphs = str(error).split("\n\n")  # torch's: what changed in 2.6, the reason, where the documentation is
    reason = paragraphs[-2] if len(paragraphs) > 1 else paragraphs[0]
    return f"torch's weights-only loader refuses it ({_printable(' '.join(reason.split()))[:200]})"


def _state_dict(path, data):
    # detectron2 takes a checkpoint without "model" to be the state_dict itself (DetectionCheckpointer._load_file).
    state = data.get("model", data) if isinstance(data, dict) else data
    if not isinstance(state, dict):
        raise D2TFError(f"{path}: not a detectron2 checkpoint (a {type(state).__name__}, not a dict of weights)")
    if not state:
        raise D2TFError(f"{path}: not a detectron2 checkpoint (it holds no weights)")
    return state


def _check_kind(path, name, value):
    """Refuses what is neither an array nor a dense tensor holding values in memory: a sparse or meta tensor."""
    if isinstance(value, np.ndarray):
        return
    if not hasattr(value, "detach"):
        raise D2TFError(f"{path}: entry {name!r} is a {type(value).__name__}, not an array")
    import torch

    if value.layout != torch.strided:
        raise D2TFError(f"{path}: entry {name!r} is a {value.layout} tensor, not a dense one")
    if value.device.type != "cpu":
        raise D2TFError(f"{path}: entry {name!r} is a tensor on device {value.device.type}, which holds no values")


def _check_element_count(path, state):
    """Refuses tensors whose element counts add up to more than the file's size in bytes, before any is read: each
    element a checkpoint holds takes a byte at least, so more is a view repeating a few bytes (strides 0) that would
    cost memory out of proportion to the file."""
    counts = {name: value.size if isinstance(value, np.ndarray) else value.numel() for name, value in state.items()}
    size = os.path.getsize(path)
    if sum(counts.values()) > size:
        largest = max(counts, key=counts.get)
        raise D2TFError(f"{path}: its tensors declare {sum(counts.values())} elements, more than the file's {size} "
                        f"bytes can hold (the largest: {_printable(largest)}, {counts[largest]})")


def _array(path, name, value):
    if isinstance(value, np.ndarray):
        return value
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
