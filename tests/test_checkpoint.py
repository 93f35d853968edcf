"""Safe checkpoint loading (d2tf.checkpoint): both zoo pickle dialects load, nothing executable ever runs."""

import os
import pickle

import numpy as np
import pytest

from core import D2TFError
from core.checkpoint import load_weights, save_pkl

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


def test_malicious_pth_is_refused_and_never_runs(tmp_path):
    import torch

    target = tmp_path / "pwned"
    torch.save(_zoo_dict({"w": _Payload(target)}), tmp_path / "evil.pth")
    with pytest.raises(D2TFError, match="refused to load"):
        load_weights(tmp_path / "evil.pth")
    assert not target.exists()


def test_pth_of_tensors_loads(tmp_path):
    from core.checkpoint import save_pth

    save_pth(WEIGHTS, tmp_path / "m.pth")
    _assert_same(load_weights(tmp_path / "m.pth"))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("corrupt.pkl", b"\x80\x04garbage", "corrupt or not a pickle"),
        ("empty.pkl", b"", "corrupt or not a pickle"),
        ("list.pkl", pickle.dumps([1, 2]), "not a detectron2 checkpoint"),
        ("corrupt.pth", b"PK\x03\x04 not a zip", "corrupt or not a torch checkpoint"),
        ("weights.h5", b"", "expected a .pkl"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(D2TFError, match=message):
        load_weights(tmp_path / name)


def test_missing_file(tmp_path):
    with pytest.raises(D2TFError, match="weights file not found"):
        load_weights(tmp_path / "nope.pkl")
