"""The machinery of the op handler cases: a case is one small graph, judged against onnxruntime. The files of cases
are named after the code they test: tests/tf_import/ops/test_<family>.py after the handler family
tf_import/ops/<family>.py (`python -m tf_import --list-ops` prints which family handles an op), test_value.py after
tf_import/value.py (channels-last values), test_translate.py after tf_import/translate.py (the Translator's own
refusals). Each defines CASES and takes its tests from handler_tests(CASES).

The cases of every file are translated and run in one TensorFlow subprocess (tests/children/ops_runner.py), once per
session (tests/tf_import/conftest.py); each test then compares one case's outputs with onnxruntime's, run here
(TensorFlow never runs in this process). A case's input dims are unknown when translating, as the image size is in a
real pb, unless the case fixes them.
"""

import collections
import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from tests.processes import CHILDREN, ROOT

RUNNER = os.path.join(CHILDREN, "ops_runner.py")
INT64_MAX = np.iinfo(np.int64).max
# float32 kernels of TF and onnxruntime differ by a few ulps (summation order, exp/log approximations).
RTOL, ATOL = 1e-5, 1e-6


@dataclasses.dataclass
class Case:
    name: str
    nodes: list
    inputs: dict  # graph inputs: name -> array
    consts: dict = dataclasses.field(default_factory=dict)  # initializers: name -> array
    opset: int = 16  # default-domain opset; None imports none
    fixed: dict = dataclasses.field(default_factory=dict)  # input name -> shape when translating (None: unknown)
    refused: str = None  # text of the expected one-line refusal
    expect: dict = None  # outputs, where onnxruntime cannot be the oracle

    def __post_init__(self):
        self.inputs = {name: np.asarray(value) for name, value in self.inputs.items()}
        self.consts = {name: np.asarray(value) for name, value in self.consts.items()}

    def model(self):
        nodes = [onnx.NodeProto() for _ in self.nodes]
        for i, (node, source) in enumerate(zip(nodes, self.nodes)):
            node.CopyFrom(source)
            node.name = node.name or f"{self.name}.{i}"
        inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype),
                                                [f"{name}_{d}" if dim is None else dim for d, dim in
                                                 enumerate(self.fixed.get(name, [None] * array.ndim))])
                  for name, array in self.inputs.items()]
        outputs = [helper.make_value_info(name, onnx.TypeProto()) for name in self.nodes[-1].output]
        graph = helper.make_graph(nodes, self.name, inputs, outputs,
                                  [numpy_helper.from_array(a, name) for name, a in self.consts.items()])
        opsets = [helper.make_opsetid("", self.opset)] if self.opset else []
        return helper.make_model(graph, opset_imports=opsets)


def node(op_type, inputs, outputs=("y",), **attrs):
    return helper.make_node(op_type, list(inputs), list(outputs), **attrs)


Draws = collections.namedtuple("Draws", "floats positive")


def draws(start):
    """Draws(floats, positive): float32 arrays of a shape, standard normal and its magnitude + 0.1, drawn in turn
    from the one stream of normals (seed 0) that every case's inputs come from, from its value `start` on. Each file
    of cases starts where its own draws lie in that stream, so its inputs do not depend on which other files run."""
    rng = np.random.default_rng(0)
    rng.standard_normal(start)

    def floats(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def positive(*shape):
        return np.abs(floats(*shape)) + np.float32(0.1)

    return Draws(floats, positive)


def ints(values, dtype=np.int64):
    return np.array(values, dtype)


def one_op(name, op_type, inputs, consts=None, outputs=("y",), **kwargs):
    """A case of one node whose inputs are the graph inputs, then the initializers, in the order given."""
    consts = consts or {}
    case_fields = {k: kwargs.pop(k) for k in list(kwargs) if k in Case.__dataclass_fields__}
    return Case(name, [node(op_type, [*inputs, *consts], outputs, **kwargs)], inputs, consts, **case_fields)


# Inputs of cases in several files.
X = draws(0).floats(2, 3, 4)
EMPTY_INDICES = np.zeros(0, np.int64)

# A Conv of IMAGE, for the cases of values it leaves channels-last (NHWC), in the handler families and test_value.py.
_floats = draws(66).floats
IMAGE = _floats(1, 3, 6, 7)
CONV = {"w": _floats(4, 3, 3, 3), "wb": _floats(4)}  # same-padded: output [1, 4, 6, 7]
PAD1 = {"pads": [1, 1, 1, 1]}


def conv_then(name, nodes, inputs=None, consts=None, **kwargs):
    """`nodes` reading "c", a Conv of the [1, 3, 6, 7] graph input "x" to [1, 4, 6, 7]."""
    return Case(name, [node("Conv", ["x", "w", "wb"], ["c"], **PAD1), *nodes], {"x": IMAGE, **(inputs or {})},
                {**CONV, **(consts or {})}, **kwargs)


# The handlers with a form of their own for TFLite (tf_import.ops.for_tflite), those whose TF form TFLite's
# converter got wrong, and Loop (TFLite's WHILE): their cases run converted to TFLite too.
TFLITE_OPS = {"Conv", "Div", "Reshape", "Split", "Slice", "RoiAlign", "NonMaxSuppression", "ScatterND", "Loop"}
# nhwc_constants casts to float64, which TFLite's kernels do not take; the Loop handler refuses scan outputs for TFLite
NOT_IN_TFLITE = {"nhwc_constants", "loop_scan_outputs", "loop_scan_outputs_no_iterations"}


def tflite_cases(cases):
    return [case for case in cases if not case.refused and {n.op_type for n in case.nodes} & TFLITE_OPS
            and case.name not in NOT_IN_TFLITE]


def every_case():
    """The CASES of every test file under tests/tf_import, in path order."""
    here = Path(__file__).parent
    modules = [importlib.import_module(".".join(("tests", "tf_import", *path.relative_to(here).with_suffix("").parts)))
               for path in sorted(here.rglob("test_*.py"))]
    return [case for module in modules for case in getattr(module, "CASES", ())]


def run_cases(directory, cases, *flags):
    """The folder of `cases`' results from one tests/children/ops_runner.py process."""
    for case in cases:
        folder = directory / case.name
        folder.mkdir()
        onnx.save(case.model(), folder / "model.onnx")
        np.savez(folder / "inputs.npz", **case.inputs)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, RUNNER, directory, *flags], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


def onnxruntime_outputs(case):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the kernels, nothing fused
    session = ort.InferenceSession(case.model().SerializeToString(), options, providers=["CPUExecutionProvider"])
    return {output.name: value for output, value in zip(session.get_outputs(), session.run(None, case.inputs))}


def _name(case):
    return case.name


def handler_tests(cases):
    """(test_handler, test_handler_in_tflite) of a file's `cases`, the second None (nothing for pytest to collect)
    where no case runs in TFLite. Their fixtures, translated and in_tflite, are tests/tf_import/conftest.py's."""
    @pytest.mark.parametrize("case", cases, ids=_name)
    def test_handler(case, translated):
        folder = translated / case.name
        error = json.loads((folder / "error.json").read_text()) if (folder / "error.json").exists() else None
        if case.refused:
            assert error, "translated, but should have been refused"
            assert error["refused"], error["message"]
            assert case.refused in error["message"] and "\n" not in error["message"]
            return
        assert_outputs(folder, case)

    in_tflite_cases = tflite_cases(cases)

    @pytest.mark.parametrize("case", in_tflite_cases, ids=_name)
    def test_handler_in_tflite(case, in_tflite):
        assert_outputs(in_tflite / case.name, case)

    return test_handler, test_handler_in_tflite if in_tflite_cases else None


def assert_outputs(folder, case):
    """The case ran, and its outputs equal onnxruntime's (or the case's expected ones)."""
    error = folder / "error.json"
    assert not error.exists(), json.loads(error.read_text())["message"]
    got = dict(np.load(folder / "outputs.npz"))
    want = case.expect or onnxruntime_outputs(case)
    assert list(got) == list(want)
    for name, expected in want.items():
        assert (got[name].dtype, got[name].shape) == (expected.dtype, expected.shape), name
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(got[name], expected, rtol=RTOL, atol=ATOL, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], expected, err_msg=name)
