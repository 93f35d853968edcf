"""Safe checkpoint loading (core.checkpoint): both zoo pickle dialects and torch.save files load whatever their
extension, nothing executable ever runs, unusable tensors are named; mismatch errors stay short."""

import codecs
import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from core import D2TFError
from core.checkpoint import describe_mismatch, load_weights, save_pkl, save_pth
from tests.test_config_safety import SMALL_LOADERS, TORCH_LOADERS, ZOO_BASE, refusal

WEIGHTS = {"backbone.conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), "x.bias": np.ones(3)}


def _zoo_dict(weights):
    return {"model": weights, "__author__": "test", "matching_heuristics": True}


def _assert_same(loaded):
    assert sorted(loaded) == sorted(WEIGHTS)
    for name, value in WEIGHTS.items():
        np.testing.assert_array_equal(loaded[name], value)


def test_pkl_roundtrip(tmp_path):
    save_pkl(WEIGHTS, tmp_path / "m.pkl")
    _assert_same(load_weights(tmp_path / "m.pkl"))
    assert os.listdir(tmp_path) == ["m.pkl"]  # no temporary file left behind


def test_numpy1_protocol2_pickle_loads(tmp_path):
    # Zoo files were written by numpy 1.x: `numpy.core.multiarray._reconstruct`, bytes through `_codecs.encode`.
    data = pickle.dumps(_zoo_dict(WEIGHTS), protocol=2)
    assert b"cnumpy._core.multiarray\n" in data
    (tmp_path / "old.pkl").write_bytes(data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    _assert_same(load_weights(tmp_path / "old.pkl"))


def test_protocol5_pickle_loads(tmp_path):
    (tmp_path / "p5.pkl").write_bytes(pickle.dumps(_zoo_dict(WEIGHTS), protocol=5))
    _assert_same(load_weights(tmp_path / "p5.pkl"))


class _Payload:
    """Unpickling this would create a file: the attack a checkpoint loader must stop."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_malicious_pkl_is_refused_and_never_runs(tmp_path):
    target = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_zoo_dict({"w": _Payload(target)})))
    with pytest.raises(D2TFError, match=r"refused to load: it references (posix|os)\.system"):
        load_weights(tmp_path / "evil.pkl")
    assert not target.exists()


class _Call:
    """Unpickling this calls `function(*args)`: pickle names the function by its module and name (a global)."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _payloads(marker):
    """(family, object whose unpickling would run `function`, the global pickle names it by), each of which would
    create `marker` or call what can. A zoo pickle names only numpy's array builders and _codecs.encode."""
    import builtins
    import functools
    import operator
    import subprocess

    write = f"open({str(marker)!r}, 'w')"
    return [
        ("builtins.eval", _Call(builtins.eval, write)),
        ("builtins.exec", _Call(builtins.exec, write)),
        ("builtins.getattr", _Call(builtins.getattr, builtins, "eval")),  # a getattr chain's first link
        ("builtins.__import__", _Call(builtins.__import__, "os")),
        ("builtins.open", _Call(builtins.open, str(marker), "w")),
        ("builtins.compile", _Call(builtins.compile, write, "f", "eval")),
        ("os.system", _Call(os.system, f"touch {marker}")),
        ("subprocess.Popen", _Call(subprocess.Popen, ["touch", str(marker)])),
        ("functools.partial", _Call(functools.partial, os.system, f"touch {marker}")),
        ("operator.attrgetter", _Call(operator.attrgetter, "system")),
        ("numpy.load", _Call(np.load, str(marker), None, True)),  # allow_pickle: another unpickler
        ("numpy.fromfile", _Call(np.fromfile, "/dev/zero")),
        ("pickle.loads", _Call(pickle.loads, b"")),  # a nested, unrestricted unpickler
    ]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_payload_family_in_every_protocol_is_refused_and_runs_nothing(tmp_path, protocol):
    marker = tmp_path / "pwned"
    for family, payload in _payloads(marker):
        path = tmp_path / f"{family}.pkl"
        try:
            data = pickle.dumps(_zoo_dict({"w": np.ones(2, np.float32), "x": payload}), protocol=protocol)
        except (pickle.PicklingError, TypeError, AttributeError):  # builtins as an argument, in protocols 0-1
            data = pickle.dumps(_zoo_dict({"x": _Call(payload.function, "touch")}), protocol=protocol)
        path.write_bytes(data)
        with pytest.raises(D2TFError, match=r"refused to load: it references \S+, which a model-zoo checkpoint") as e:
            load_weights(path)
        referenced = str(e.value).split("it references ")[1].split(",")[0]
        assert referenced.rsplit(".", 1)[1] in family, (family, referenced)
        assert not marker.exists(), family


@pytest.mark.parametrize("name", ["evil.pth", "evil.pkl"])
def test_malicious_torch_file_is_refused_by_global_and_never_runs(tmp_path, name):
    import torch

    target = tmp_path / "pwned"
    torch.save(_zoo_dict({"w": _Payload(target)}), tmp_path / name)
    with pytest.raises(D2TFError) as err:
        load_weights(tmp_path / name)
    assert str(err.value) == (
        f"{tmp_path / name}: refused to load: it references {os.system.__module__}.system, "
        "which torch's weights-only loader refuses"
    )
    assert not target.exists()


def test_malicious_pickle_named_pth_is_refused_and_never_runs(tmp_path):
    target = tmp_path / "pwned"
    (tmp_path / "evil.pth").write_bytes(pickle.dumps(_zoo_dict({"w": _Payload(target)})))
    with pytest.raises(D2TFError, match=r"refused to load: it references (posix|os)\.system"):
        load_weights(tmp_path / "evil.pth")
    assert not target.exists()


def test_pth_of_tensors_loads(tmp_path):
    save_pth(WEIGHTS, tmp_path / "m.pth")
    _assert_same(load_weights(tmp_path / "m.pth"))


@pytest.mark.parametrize("save, name", [(save_pkl, "m.pth"), (save_pkl, "m.bin"), (save_pth, "m.pkl")])
def test_format_is_told_by_content_not_extension(tmp_path, save, name):
    save(WEIGHTS, tmp_path / name)
    _assert_same(load_weights(tmp_path / name))


def test_pre_zip_torch_format_loads_under_any_name(tmp_path):
    import torch

    state = {"model": {k: torch.from_numpy(v) for k, v in WEIGHTS.items()}}
    torch.save(state, tmp_path / "old.pkl", _use_new_zipfile_serialization=False)
    _assert_same(load_weights(tmp_path / "old.pkl"))


def test_bare_state_dict_loads(tmp_path):
    import torch

    # torch.save(model.state_dict()): detectron2 takes a checkpoint without "model" to be the state_dict itself.
    torch.save({k: torch.from_numpy(v) for k, v in WEIGHTS.items()}, tmp_path / "state.pth")
    _assert_same(load_weights(tmp_path / "state.pth"))


def test_model_final_as_detectron2s_trainer_writes_it_loads(tmp_path):
    """DetectionCheckpointer.save as detectron2's trainer calls it: the model's state beside the optimizer's (SGD
    momentum buffers after a step), the LR scheduler's and the iteration; only the model's weights come out."""
    import torch

    from core import zoo
    from tests.trainer import save_model_final

    # RetinaNet: the smallest head; any detectron2 model saves alike
    path, model = save_model_final(zoo.load_config(zoo.RETINANET[50]), tmp_path)
    saved = torch.load(path, weights_only=False)
    assert sorted(saved) == ["iteration", "model", "optimizer", "scheduler"] and saved["optimizer"]["state"]
    loaded = load_weights(path)
    assert loaded.keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded[name], value.numpy(), err_msg=name)


def test_parameters_bfloat16_and_integer_buffers_load(tmp_path):
    import torch

    state = {
        "conv.weight": torch.nn.Parameter(torch.ones(2, 3)),  # requires grad, as saved from named_parameters()
        "fc.weight": torch.tensor([0.5, -2.0], dtype=torch.bfloat16),
        "bn.num_batches_tracked": torch.tensor(7),  # an int64 counter in BatchNorm training checkpoints
    }
    torch.save({"model": state}, tmp_path / "m.pth")
    loaded = load_weights(tmp_path / "m.pth")
    np.testing.assert_array_equal(loaded["conv.weight"], np.ones((2, 3), np.float32))
    assert loaded["fc.weight"].dtype == np.float32 and loaded["fc.weight"].tolist() == [0.5, -2.0]
    assert loaded["bn.num_batches_tracked"] == 7


def test_non_finite_tensors_are_refused_by_name(tmp_path):
    weights = dict(WEIGHTS, **{"roi_heads.a.weight": np.array([1, np.nan], np.float32),
                               "backbone.b.bias": np.full(2, -np.inf)})
    save_pkl(weights, tmp_path / "m.pkl")
    with pytest.raises(D2TFError) as err:
        load_weights(tmp_path / "m.pkl")
    assert str(err.value) == (
        f"{tmp_path / 'm.pkl'}: non-finite values (NaN/Inf, or beyond float32's range) in 2 tensors: "
        "backbone.b.bias, roi_heads.a.weight"
    )


def test_a_float64_value_beyond_float32s_range_is_refused_as_non_finite(tmp_path):
    """The model computes in float32, where 1e39 is Inf: finite is judged after that cast."""
    save_pkl({"w": np.array([1.0, 1e39]), "fine": np.array([1e38])}, tmp_path / "big.pkl")
    with pytest.raises(D2TFError, match=r"non-finite values \(NaN/Inf, or beyond float32's range\) in 1 tensor: w$"):
        load_weights(tmp_path / "big.pkl")


@pytest.mark.parametrize("name", ["evil\nerror: export failed: FAKE second line", "red\x1b[31mtext", "tab\there"])
def test_a_weight_name_prints_escaped_on_one_line(tmp_path, name):
    save_pkl({name: np.array([np.nan], np.float32)}, tmp_path / "named.pkl")
    with pytest.raises(D2TFError) as raised:
        load_weights(tmp_path / "named.pkl")
    message = str(raised.value)
    assert message.isprintable() and name.encode("unicode_escape").decode() in message, message


def test_weights_named_by_other_than_strings_are_refused_in_one_line(tmp_path):
    save_pkl({3: np.ones(2, np.float32), "w": np.ones(2, np.float32)}, tmp_path / "numbers.pkl")
    with pytest.raises(D2TFError, match=r"numbers.pkl: not a detectron2 checkpoint: 1 of its weights are named by "
                                        r"a int, not a string \(e.g. 3\)$"):
        load_weights(tmp_path / "numbers.pkl")


def test_many_non_finite_tensors_are_summarised(tmp_path):
    save_pkl({f"backbone.res2.{i}.conv1.weight": np.full(1, np.nan, np.float32) for i in range(12)}, tmp_path / "m.pkl")
    with pytest.raises(D2TFError) as err:
        load_weights(tmp_path / "m.pkl")
    assert str(err.value) == (
        f"{tmp_path / 'm.pkl'}: non-finite values (NaN/Inf, or beyond float32's range) in 12 tensors: "
        "backbone.res2.0.conv1.weight, "
        "backbone.res2.1.conv1.weight, backbone.res2.2.conv1.weight and 9 more (backbone.res2: 12)"
    )


def test_non_numeric_tensors_are_refused_by_name(tmp_path):
    weights = dict(WEIGHTS, **{"x.names": np.array(["a", "bc"]), "x.mixed": np.array([1, "a"], dtype=object),
                               "x.nan": np.full(1, np.nan)})
    save_pkl(weights, tmp_path / "m.pkl")
    with pytest.raises(D2TFError) as err:
        load_weights(tmp_path / "m.pkl")
    assert str(err.value) == (
        f"{tmp_path / 'm.pkl'}: non-numeric values in 2 tensors: x.mixed (object), x.names (<U2); "
        "non-finite values (NaN/Inf, or beyond float32's range) in 1 tensor: x.nan"
    )


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("corrupt.pkl", b"\x80\x04garbage", "corrupt or not a pickle"),
        ("empty.pkl", b"", "corrupt or not a pickle"),
        ("list.pkl", pickle.dumps([1, 2]), r"not a detectron2 checkpoint \(a list, not a dict of weights\)"),
        ("empty_dict.pth", pickle.dumps({}), r"not a detectron2 checkpoint \(it holds no weights\)"),
        ("corrupt.pkl", b"PK\x03\x04 not a zip", "corrupt or not a torch checkpoint"),
        ("weights.h5", b"\x89HDF\r\n", "corrupt or not a pickle"),
        # a stray persistent id: pickle's own message has a line break, the error must not
        ("pid.pkl", b"\x80\x02K\x01Q.", r"^\S+: corrupt or not a pickle \(UnpicklingError: [^\n]*\)$"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(D2TFError, match=message):
        load_weights(tmp_path / name)


def test_missing_file(tmp_path):
    with pytest.raises(D2TFError, match="weights file not found"):
        load_weights(tmp_path / "nope.pkl")


# Hostile and careless checkpoints (issue 31), each refused in one line before what it declares is built: rows of the
# probe list, run as test_config_safety.CONFIG_PROBES are.

def _pickled(obj):
    """A builder: model.pkl holding `obj` pickled (protocol 2, the zoo's), or `obj` itself if bytes."""
    def build(directory):
        (directory / "model.pkl").write_bytes(obj if isinstance(obj, bytes) else pickle.dumps(obj, protocol=2))
        return directory / "model.pkl"
    return build


class _Reconstructed:
    """Pickles as numpy's arrays do, `_reconstruct(ndarray, shape, b'f')` and then a state holding `values`, but with a
    `shape` of its choosing, which numpy's own _reconstruct would allocate."""

    def __init__(self, shape, values):
        self.shape, self.values = shape, values

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return _reconstruct, (np.ndarray, self.shape, b"f"), (1, self.values.shape, self.values.dtype, False,
                                                              self.values.tobytes())


def _torch_saved(state, **options):
    """A builder: model.pth, torch.save of `state(torch)` (made when the probe runs: collecting imports no PyTorch)."""
    def build(directory):
        import torch

        torch.save(state(torch), directory / "model.pth", **options)
        return directory / "model.pth"
    return build


def _torch_zip(pickled, storage_chunks=()):
    """A builder: model.pth, a zip laid out as torch.save's holding the pickle `pickled` and, deflated, storage `0`
    made of `storage_chunks` (torch.save never compresses; torch.load inflates what it finds)."""
    def build(directory):
        with zipfile.ZipFile(directory / "model.pth", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for name, data in (("data.pkl", pickled), ("byteorder", "little"), ("version", "3\n")):
                archive.writestr(f"archive/{name}", data, zipfile.ZIP_STORED)
            with archive.open("archive/data/0", "w") as storage:
                for chunk in storage_chunks:
                    storage.write(chunk)
        return directory / "model.pth"
    return build


class _Storage:
    """Storage `0` of `numel` float32 values, in a pickle _StoragePickler writes."""

    def __init__(self, numel):
        self.numel = numel


class _StoragePickler(pickle.Pickler):
    def persistent_id(self, obj):  # as torch.save names a storage
        import torch

        return ("storage", torch.FloatStorage, "0", "cpu", obj.numel) if isinstance(obj, _Storage) else None


def _one_tensor_pickle(numel):
    """torch.save's pickle of `{"model": {"w": tensor}}`, the tensor `numel` float32 values of storage `0`."""
    import torch

    data = io.BytesIO()
    tensor = _Call(torch._utils._rebuild_tensor_v2, _Storage(numel), 0, (numel,), (1,), False, OrderedDict())
    _StoragePickler(data, protocol=2).dump({"model": {"w": tensor}})
    return data.getvalue()


def _deflated_gib(directory):
    """A 5 MB torch zip whose one storage inflates to 1 GiB."""
    return _torch_zip(_one_tensor_pickle(1 << 28), [bytes(1 << 24)] * 64)(directory)


# {"model": {name: 1}} with a name 200,000 tuples deep, built by opcodes (pickle.dumps would recurse).
NESTED_NAME = b"\x80\x02}X\x05\x00\x00\x00model}" + b")" + b"\x85" * 200_000 + b"K\x01ss."
PICKLE_PROBES = [  # family, builder (directory -> the weights), a fragment of the one line
    ("a zero-stride view of 4 bytes as 10**10 elements",
     _pickled(_zoo_dict({"w": _Call(np.ndarray, (100_000, 100_000), np.dtype("f4"), b"\0" * 4, 0, (0, 0))})),
     "model.pkl: refused to load: it calls numpy.ndarray, which a model-zoo checkpoint never does"),
    ("numpy.ndarray allocating 4 GB", _pickled(_zoo_dict({"w": _Call(np.ndarray, (10**9,), np.dtype("f4"))})),
     "refused to load: it calls numpy.ndarray"),
    ("_reconstruct allocating 16 GB for two values", _pickled(_zoo_dict({"w": _Reconstructed(
        (4 * 10**9,), np.full(2, np.nan, np.float32))})), "non-finite values (NaN/Inf, or beyond float32's range)"),
    ("a weight name nested 200,000 tuples deep", _pickled(NESTED_NAME),
     "model.pkl: refused to load: its pickle nests objects more than 100 deep"),
    ("_codecs.encode naming an unknown codec", _pickled(_zoo_dict({"w": _Call(codecs.encode, "x", "no-such-codec")})),
     "refused to load: its _codecs.encode asks for codec 'no-such-codec', not latin1"),
    ("a memo index of 2**31 - 1", _pickled(b"\x80\x02K\x01r\xff\xff\xff\x7f."),
     "refused to load: its pickle writes memo entry 2147483647 after only 0"),
    ("bytes declaring 1 TB", _pickled(b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"xx."),
     "corrupt or not a pickle (ValueError: expected 1099511627776 bytes in a bytes8, but only 3 remain)"),
    ("4 MB of two-byte opcodes", _pickled(b"\x80\x02" + b"N0" * 2_000_000 + b"N."),
     "refused to load: its pickles hold more than 1000000 opcodes"),
]
TORCH_PROBES = [
    ("a zero-stride view of 1 element as 10**10", _torch_saved(lambda torch: {
        "model": {"w": torch.zeros(1).expand(100_000, 100_000)}}),
     "model.pth: its tensors declare 10000000000 elements, more than the file's"),
    ("a storage deflated from 1 GiB", _deflated_gib, "model.pth: refused to load: its zip entries declare 1073742"),
    ("a weight name nested 200,000 tuples deep", _torch_zip(NESTED_NAME),
     "model.pth: refused to load: its pickle nests objects more than 100 deep"),
    ("a meta tensor", _torch_saved(lambda torch: {"model": {"w": torch.empty(10**6, device="meta")}}),
     "model.pth: entry 'w' is a tensor on device meta, which holds no values"),
    ("a sparse tensor", _torch_saved(lambda torch: {"model": {"w": torch.sparse_coo_tensor(
        [[0, 99_999], [0, 99_999]], [1.0, 2.0], (100_000, 100_000))}}),
     "model.pth: entry 'w' is a torch.sparse_coo tensor, not a dense one"),
    ("pickle protocol 4 in the pre-1.6 format", _torch_saved(lambda torch: {"model": {"w": torch.ones(2)}},
                                                             _use_new_zipfile_serialization=False, pickle_protocol=4),
     "model.pth: refused to load: it was saved with pickle protocol 4 (opcode FRAME), which torch's weights-only "
     "loader does not read"),
]


@pytest.mark.parametrize("build, fragment", [row[1:] for row in PICKLE_PROBES], ids=[row[0] for row in PICKLE_PROBES])
def test_hostile_pickle_is_refused_in_one_line_within_bounds(tmp_path, build, fragment):
    assert fragment in refusal(tmp_path, ZOO_BASE, build(tmp_path), SMALL_LOADERS)


@pytest.mark.parametrize("build, fragment", [row[1:] for row in TORCH_PROBES], ids=[row[0] for row in TORCH_PROBES])
def test_hostile_torch_file_is_refused_in_one_line_within_bounds(tmp_path, build, fragment):
    assert fragment in refusal(tmp_path, ZOO_BASE, build(tmp_path), TORCH_LOADERS)


def _resnet_names(blocks):
    """Tensor names of a detectron2 FPN bottleneck ResNet with `blocks` blocks in res2..res5."""
    names = ["backbone.bottom_up.stem.conv1.weight"]
    for stage, count in zip((2, 3, 4, 5), blocks):
        for block in range(count):
            for conv in ["conv1", "conv2", "conv3"] + (["shortcut"] if block == 0 else []):
                prefix = f"backbone.bottom_up.res{stage}.{block}.{conv}"
                names += [f"{prefix}.weight"] + [f"{prefix}.norm.{p}" for p in ("weight", "bias", "running_mean",
                                                                                  "running_var")]
    return names


R50 = {name: (1,) for name in _resnet_names((3, 4, 6, 3))}
R101 = {name: (1,) for name in _resnet_names((3, 4, 23, 3))}
HEADS = {"roi_heads.box_head.fc1.weight": (1024, 12544), "roi_heads.box_predictor.cls_score.weight": (4, 1024)}


def test_matching_weights_have_no_mismatch():
    anchors = {"proposal_generator.anchor_generator.cell_anchors.0": (3, 4)}  # detectron2 recomputes these
    assert describe_mismatch(R50, dict(R50, **anchors)) is None


def test_few_mismatches_are_listed_in_full():
    found = dict(R50, **{"roi_heads.extra.weight": (3,), "roi_heads.box_predictor.cls_score.weight": (11, 1024)})
    assert describe_mismatch(dict(R50, **HEADS), found) == (
        "weights do not match the config: missing: roi_heads.box_head.fc1.weight; unexpected: roi_heads.extra.weight;"
        " wrong shape: roi_heads.box_predictor.cls_score.weight (11, 1024) (model has (4, 1024))"
    )


def test_r101_weights_for_r50_config_are_summarised_with_a_depth_hint():
    message = describe_mismatch(dict(R50, **HEADS), dict(R101, **HEADS))
    assert message == (
        "weights do not match the config: unexpected: backbone.bottom_up.res4.6.conv1.norm.bias, "
        "backbone.bottom_up.res4.6.conv1.norm.running_mean, backbone.bottom_up.res4.6.conv1.norm.running_var "
        "and 252 more (backbone.bottom_up.res4: 255); these look like MODEL.RESNETS.DEPTH 101 weights, "
        "the config has 50; D2TF_VERBOSE=1 lists every name"
    )
    assert len(message) == 332  # was 11,940 characters naming all 255 tensors


def test_summary_counts_per_module():
    found = {n: s for n, s in R50.items() if not any(f"res{stage}." in n for stage in (3, 4, 5))}
    assert describe_mismatch(dict(R50, **HEADS), found) == (
        "weights do not match the config: missing: backbone.bottom_up.res3.0.conv1.norm.bias, "
        "backbone.bottom_up.res3.0.conv1.norm.running_mean, backbone.bottom_up.res3.0.conv1.norm.running_var and 209 "
        "more (backbone.bottom_up.res4: 95, backbone.bottom_up.res3: 65, backbone.bottom_up.res5: 50, "
        "roi_heads.box_head: 1 and 1 more module); D2TF_VERBOSE=1 lists every name"
    )  # no depth hint: the weights hold no complete ResNet to tell one from


def test_full_mismatch_lists_every_name():
    message = describe_mismatch(R101, R50, full=True)
    assert message.startswith("weights do not match the config: missing: backbone.bottom_up.res4.6.conv1.norm.bias, ")
    assert message.count("backbone.bottom_up.res4.") == 255
    assert message.endswith("; these look like MODEL.RESNETS.DEPTH 50 weights, the config has 101")
