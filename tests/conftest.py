"""Shared fixtures: calibrated checkpoints, generated once per test session and per architecture."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from d2tf import zoo
from tests.parity import TRACE_SIZE


class Workspace:
    """Artifacts (checkpoints, ONNX files, pbs) of one architecture at a time, in one directory per architecture.

    All twelve architectures' artifacts take over 20 GB, more than a CI machine's disk may have. Tests run grouped
    by architecture (pytest_collection_modifyitems below), so when a test asks for another architecture the
    previous one's directory is deleted; asking for it again later would rebuild it, slowly but correctly.
    """

    def __init__(self, root):
        self.root, self.config, self.cache = root, None, {}

    def get(self, config, key, make):
        """The cached `make(directory)` for (config, key), made in that architecture's directory."""
        if config != self.config:
            if self.config is not None:
                shutil.rmtree(self.root / zoo.short_name(self.config), ignore_errors=True)
            self.config, self.cache = config, {}
            (self.root / zoo.short_name(config)).mkdir(parents=True, exist_ok=True)
        if key not in self.cache:
            directory = self.root / zoo.short_name(config) / "_".join(map(str, key))
            directory.mkdir(exist_ok=True)
            self.cache[key] = make(directory)
        return self.cache[key]


def _architecture(item):
    """The config a test works on: its `config` parameter, or its `architecture` marker."""
    params = getattr(item, "callspec", None) and item.callspec.params
    marker = item.get_closest_marker("architecture")
    return (params or {}).get("config") or (marker.args[0] if marker else None)


def pytest_configure(config):
    config.addinivalue_line("markers", "architecture(config): the seed architecture whose artifacts a test uses")


def pytest_collection_modifyitems(items):
    """Groups tests by architecture (tests of none first, then zoo order), keeping the order within a group."""
    order = {config: i for i, config in enumerate(zoo.SEED_ARCHITECTURES)}
    items.sort(key=lambda item: -1 if _architecture(item) is None else order.get(_architecture(item), len(order)))


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("architectures"))


@pytest.fixture(scope="session")
def checkpoint_path(workspace):
    """`checkpoint_path(config, ext=".pkl")` -> path of a calibrated checkpoint for that config (seed 0)."""
    from d2tf import calibrate

    def make(config, ext):
        def write(directory):
            calibrate.write_checkpoint(config, directory / ("model" + ext))
            return directory / ("model" + ext)
        return write

    return lambda config, ext=".pkl": workspace.get(config, ("checkpoint", ext[1:]), make(config, ext))


@pytest.fixture(scope="session")
def converted(workspace, checkpoint_path):
    """`converted(config)` -> (out dir, CompletedProcess) of the whole pipeline (`python -m d2tf.convert`, exact
    RoIAlign) on the test checkpoint. The stage tests use its files, so each architecture is exported, fixed
    (exact) and translated (exact) once."""

    def make(config):
        def run(directory):
            out = directory / "out"
            size = "x".join(map(str, TRACE_SIZE))
            result = run_python("-m", "d2tf.convert", "--config", config, "--weights", checkpoint_path(config),
                                "--out", out, "--roialign", "exact", "--trace-size", size, "--verify-sizes", size)
            assert result.returncode == 0, result.stderr[-3000:]
            return out, result
        return run

    return lambda config: workspace.get(config, ("converted",), make(config))


@pytest.fixture(scope="session")
def exported(converted):
    """`exported(config)` -> out dir with model.onnx and model.json (export's files, from the pipeline run)."""
    return lambda config: converted(config)[0]


@pytest.fixture(scope="session")
def d2_model(checkpoint_path):
    """`d2_model(config)` -> detectron2's model with the test checkpoint. Built on each call rather than kept:
    twelve of them would hold several GB."""
    from d2tf.checkpoint import load_weights
    from export.model import build_model

    return lambda config: build_model(zoo.load_config(config), load_weights(checkpoint_path(config)))


@pytest.fixture(scope="session")
def onnx_outputs():
    """`onnx_outputs(path, seed, size)` -> onnxruntime outputs on that synthetic image, computed once per session."""
    from d2tf import ort
    from d2tf.synthetic import synthetic_image

    cache = {}

    def get(path, seed, size):
        key = (str(path), seed, tuple(size))
        if key not in cache:
            cache[key] = ort.run(ort.session(path), synthetic_image(*size, seed=seed))
        return cache[key]

    return get


@pytest.fixture(scope="session")
def fixed(workspace, converted):
    """`fixed(config, roialign)` -> path of graphfix's output, beside a copy of model.json as tf_import wants it.
    Exact mode is the pipeline run's model.fixed.onnx."""
    from graphfix.cli import fix

    def make(config, roialign):
        def run(directory):
            out = converted(config)[0]
            shutil.copy(out / "model.json", directory / "model.json")
            return fix(str(out / "model.onnx"), str(directory / "model.fixed.onnx"), roialign=roialign)
        return run

    def get(config, roialign):
        if roialign == "exact":
            return str(converted(config)[0] / "model.fixed.onnx")
        return workspace.get(config, ("fixed", roialign), make(config, roialign))

    return get


@pytest.fixture(scope="session")
def pb(workspace, converted, fixed):
    """`pb(config, roialign)` -> (path, seconds) of the frozen pb of that fixed graph (exact: the pipeline's)."""

    def make(config, roialign):
        def run(directory):
            start = time.perf_counter()
            result = run_python("-m", "tf_import", fixed(config, roialign), "--out", directory)
            assert result.returncode == 0, result.stderr[-3000:]
            return directory / "model.pb", time.perf_counter() - start
        return run

    def get(config, roialign):
        if roialign == "exact":
            return converted(config)[0] / "model.pb", None
        return workspace.get(config, ("pb", roialign), make(config, roialign))

    return get


def run_python(*args):
    """A Python subprocess of this venv (TensorFlow work must not share the PyTorch test process)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env)


_MEASUREMENTS = []


@pytest.fixture
def measure():
    """`measure(table, **row)`: a figure to print in the summary (the numbers the issue notes report)."""
    return lambda table, **row: _MEASUREMENTS.append((table, row))


def pytest_terminal_summary(terminalreporter):
    tables = {}
    for table, row in _MEASUREMENTS:
        tables.setdefault(table, []).append(row)
    for table, rows in tables.items():
        terminalreporter.section(table)
        columns = list(rows[0])
        terminalreporter.line(" | ".join(columns))
        for row in rows:
            terminalreporter.line(" | ".join(_fmt(row.get(c)) for c in columns))


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def config_yaml(directory, base, body):
    """A yaml config at `directory` that takes the zoo config `base` and overrides it with `body`."""
    from detectron2 import model_zoo

    path = directory / "cfg.yaml"
    path.write_text(f'_BASE_: "{model_zoo.get_config_file(base)}"\n{body}')
    return str(path)


@pytest.fixture(scope="session")
def high_threshold_export(d2_model, checkpoint_path, workspace):
    """`high_threshold_export(config)` -> (out dir, grey image): config exported with its score threshold between
    the best score on a flat grey image and the best on the trace image, so grey gives zero detections."""
    import numpy as np

    from d2tf.synthetic import synthetic_image
    from export.cli import export
    from export.predict import detectron2_outputs

    grey = np.full((*TRACE_SIZE, 3), 128, np.float32)

    def make(config):
        def run(out):
            model = d2_model(config)
            best_grey = detectron2_outputs(model, grey)["scores"].max(initial=0)
            best_trace = detectron2_outputs(model, synthetic_image(*TRACE_SIZE, seed=0))["scores"].max()
            assert best_trace > best_grey + 0.02
            threshold = (best_grey + best_trace) / 2
            yaml = config_yaml(out, config, f"MODEL:\n  ROI_HEADS:\n    SCORE_THRESH_TEST: {threshold}\n")
            export(yaml, checkpoint_path(config), out, TRACE_SIZE)
            return out, grey
        return run

    return lambda config: workspace.get(config, ("high_threshold",), make(config))
