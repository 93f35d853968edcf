"""Shared fixtures: calibrated checkpoints, generated once per test session and per architecture."""

import pytest

from d2tf import zoo
from tests.parity import TRACE_SIZE


@pytest.fixture(scope="session")
def checkpoint_path(tmp_path_factory):
    """`checkpoint_path(config, ext=".pkl")` -> path of a calibrated checkpoint for that config (seed 0)."""
    from d2tf import calibrate

    cache = {}
    root = tmp_path_factory.mktemp("checkpoints")

    def get(config, ext=".pkl"):
        key = (config, ext)
        if key not in cache:
            path = root / (zoo.short_name(config) + ext)
            calibrate.write_checkpoint(config, path)
            cache[key] = path
        return cache[key]

    return get


@pytest.fixture(scope="session")
def exported(checkpoint_path, tmp_path_factory):
    """`exported(config)` -> out dir with model.onnx and model.json, exported once per session."""
    from export.cli import export

    cache = {}

    def get(config):
        if config not in cache:
            cache[config] = tmp_path_factory.mktemp(zoo.short_name(config))
            export(config, checkpoint_path(config), cache[config], TRACE_SIZE)
        return cache[config]

    return get


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
def fixed(exported):
    """`fixed(config, roialign)` -> path of graphfix's output for that exported model, made once per session."""
    from graphfix.cli import fix

    cache = {}

    def get(config, roialign):
        if (config, roialign) not in cache:
            out = exported(config)
            cache[config, roialign] = fix(str(out / "model.onnx"), str(out / f"model.fixed.{roialign}.onnx"),
                                          roialign=roialign)
        return cache[config, roialign]

    return get


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
def high_threshold_export(d2_model, checkpoint_path, tmp_path_factory):
    """`high_threshold_export(config)` -> (out dir, grey image): config exported with its score threshold between
    the best score on a flat grey image and the best on the trace image, so grey gives zero detections."""
    import numpy as np

    from d2tf.synthetic import synthetic_image
    from export.cli import export
    from tests.parity import detectron2_outputs

    cache = {}
    grey = np.full((*TRACE_SIZE, 3), 128, np.float32)

    def get(config):
        if config not in cache:
            model = d2_model(config)
            best_grey = detectron2_outputs(model, grey)["scores"].max(initial=0)
            best_trace = detectron2_outputs(model, synthetic_image(*TRACE_SIZE, seed=0))["scores"].max()
            assert best_trace > best_grey + 0.02
            out = tmp_path_factory.mktemp("high_threshold")
            threshold = (best_grey + best_trace) / 2
            yaml = config_yaml(out, config, f"MODEL:\n  ROI_HEADS:\n    SCORE_THRESH_TEST: {threshold}\n")
            export(yaml, checkpoint_path(config), out, TRACE_SIZE)
            cache[config] = out, grey
        return cache[config]

    return get
