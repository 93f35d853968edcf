"""Shared fixtures. Each architecture is converted once (`python -m d2tf.convert`, exact RoIAlign) and every runtime
runs once on the same two images: verify keeps each runtime's outputs, and one TensorFlow subprocess
(tests/tf_checks.py) adds the tensorpack-mode pb and tensorpack's own SmartInit. The stage tests compare those kept
outputs pair by pair, so no test runs a model again.

`ARCHS=name,...` (short names, e.g. `make test ARCHS=mask_rcnn_R_50_FPN_3x`) limits the suite to those
architectures plus the tests that use none; `ARCHS=none` runs only the latter.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from core import contract, zoo
from core.files import load_outputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACE_SIZE = (256, 320)  # small inputs keep the suite fast; full sizes belong in the benchmark
OTHER_SIZE = (300, 452)  # another aspect, and not a multiple of 32 (FPN pads inside the graph)
# Test-time counts of the test configs: C4 models push every proposal through res5, so 1000 proposals cost 10x
# what 100 do, in every runtime. The conversion carries these keys (export/supported.py).
RPN_TOPK, DETECTIONS = 100, 30
# verify's image keys: synthetic image i+1 at each size, seeded with i+1.
IMAGES = {f"synthetic{i + 1}_{h}x{w}": (i + 1, (h, w)) for i, (h, w) in enumerate((TRACE_SIZE, OTHER_SIZE))}


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
    config.addinivalue_line("markers", "architecture(config): the architecture whose artifacts a test uses")


def pytest_collection_modifyitems(config, items):
    """Keeps the architectures ARCHS names (all if unset), then groups tests by architecture (tests of none first,
    then zoo order), keeping the order within a group."""
    wanted = os.environ.get("ARCHS")
    if wanted:
        names = set(wanted.split(",")) - {"none"}
        unknown = names - {zoo.short_name(c) for c in zoo.TENSORPACK_ARCHITECTURES}
        if unknown:
            raise pytest.UsageError(f"ARCHS: unknown {sorted(unknown)}; known: "
                                    f"{', '.join(zoo.short_name(c) for c in zoo.TENSORPACK_ARCHITECTURES)}")
        keep = [i for i in items if _architecture(i) is None or zoo.short_name(_architecture(i)) in names]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
    order = {c: i for i, c in enumerate(zoo.TENSORPACK_ARCHITECTURES)}
    items.sort(key=lambda item: -1 if _architecture(item) is None else order.get(_architecture(item), len(order)))
    for item in items:  # with pytest-xdist (--dist loadgroup), one worker takes all of an architecture's tests
        if _architecture(item) is not None:
            item.add_marker(pytest.mark.xdist_group(zoo.short_name(_architecture(item))))


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("architectures"))


def small_config(config, directory):
    """A self-contained yaml of `config` with the suite's small proposal and detection counts."""
    cfg = zoo.load_config(config).clone()
    cfg.defrost()
    cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = cfg.MODEL.RPN.POST_NMS_TOPK_TEST = RPN_TOPK
    cfg.TEST.DETECTIONS_PER_IMAGE = DETECTIONS
    path = directory / f"{zoo.short_name(config)}.yaml"
    path.write_text(cfg.dump())
    return path


@pytest.fixture(scope="session")
def checkpoint_path(workspace):
    """`checkpoint_path(config, ext=".pkl")` -> (test config yaml, calibrated checkpoint for it, seed 0)."""
    from d2tf import calibrate

    def make(config, ext):
        def write(directory):
            yaml = small_config(config, directory)
            calibrate.write_checkpoint(str(yaml), directory / ("model" + ext))
            return yaml, directory / ("model" + ext)
        return write

    return lambda config, ext=".pkl": workspace.get(config, ("checkpoint", ext[1:]), make(config, ext))


class Pipeline:
    """One architecture converted by `python -m d2tf.convert` (exact RoIAlign) with verify's working files kept."""

    def __init__(self, config, yaml, weights, out, work, result):
        self.config, self.yaml, self.weights, self.out, self.work, self.result = (
            config, yaml, weights, out, work, result)
        self.info = json.loads((out / "model.json").read_text())

    def outputs(self, runtime):
        """{image key: outputs (0-based classes)} of one runtime kept by verify: detectron2, model.onnx,
        model.fixed.onnx, model.pb, model.fixed.tensorpack.onnx."""
        outputs = load_outputs(self.work / f"{runtime}.npz")
        if runtime == "model.pb":
            outputs = {key: contract.labels_to_classes(value) for key, value in outputs.items()}
        return outputs

    @property
    def mask(self):
        return self.info["architecture"]["mask"]


@pytest.fixture(scope="session")
def pipeline(workspace, checkpoint_path):
    """`pipeline(config)` -> Pipeline of that architecture, converted once per session."""

    def make(config):
        def run(directory):
            yaml, weights = checkpoint_path(config)
            out, work = directory / "out", directory / "verify"
            sizes = ",".join(f"{h}x{w}" for _, (h, w) in IMAGES.values())
            result = run_python("-m", "d2tf.convert", "--config", yaml, "--weights", weights, "--out", out,
                                "--roialign", "exact", "--trace-size", "x".join(map(str, TRACE_SIZE)),
                                "--verify-sizes", sizes, "--verify-work-dir", work)
            assert result.returncode == 0, result.stderr[-3000:]
            return Pipeline(config, yaml, weights, out, work, result)
        return run

    return lambda config: workspace.get(config, ("pipeline",), make(config))


@pytest.fixture(scope="session")
def tf_checks(workspace, pipeline):
    """`tf_checks(config)` -> what tests/tf_checks.py found, in one TensorFlow process per architecture: the
    outputs of the tensorpack-mode pb (translated from verify's model.fixed.tensorpack.onnx) on verify's images,
    and tensorpack SmartInit loading the pipeline's npz into the variables the contract says tensorpack creates."""
    from tests.tensorpack_contract import variable_shapes

    def make(config):
        def run(directory):
            p = pipeline(config)
            variables = directory / "variables.json"
            variables.write_text(json.dumps(variable_shapes(p.weights, p.info)))
            result = run_python(os.path.join(os.path.dirname(__file__), "tf_checks.py"),
                                p.work / "model.fixed.tensorpack.onnx", p.work / "images.npz", p.out / "model.npz",
                                variables, directory)
            assert result.returncode == 0, result.stderr[-3000:]
            outputs = load_outputs(directory / "tensorpack_pb.npz")
            report = json.loads((directory / "report.json").read_text())
            return {key: contract.labels_to_classes(value) for key, value in outputs.items()}, report
        return run

    return lambda config: workspace.get(config, ("tf_checks",), make(config))


def run_python(*args):
    """A Python subprocess of this venv (TensorFlow work must not share the PyTorch test process)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env)


@pytest.fixture
def measure(request):
    """`measure(table, **row)`: a figure to print in the summary (the numbers the issue notes report). Kept in the
    test's report, so it reaches the summary from pytest-xdist's workers too."""
    def record(table, **row):
        plain = {key: value.item() if hasattr(value, "item") else value for key, value in row.items()}  # numpy
        request.node.user_properties.append(("measure", (table, plain)))

    return record


def pytest_terminal_summary(terminalreporter):
    tables = {}
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for key, value in getattr(report, "user_properties", ()):
            if key == "measure":
                tables.setdefault(value[0], []).append(value[1])
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


def yaml_with(yaml, body, directory):
    """A yaml at `directory` that takes the yaml file `yaml` and overrides it with `body`."""
    path = directory / "cfg.yaml"
    path.write_text(f'_BASE_: "{yaml}"\n{body}')
    return str(path)


@pytest.fixture(scope="session")
def high_threshold_export(pipeline, workspace):
    """`high_threshold_export(config)` -> (out dir, grey image): config exported with its score threshold between
    the best score on a flat grey image and the best on the trace image, so grey gives zero detections."""
    from core.checkpoint import load_weights
    from core.synthetic import synthetic_image
    from export.cli import export
    from export.model import build_model
    from runners.detectron2_runner import predict

    grey = np.full((*TRACE_SIZE, 3), 128, np.float32)

    def make(config):
        def run(out):
            p = pipeline(config)
            model = build_model(zoo.load_config(str(p.yaml)), load_weights(p.weights))
            best_grey = predict(model, grey)["scores"].max(initial=0)
            best_trace = predict(model, synthetic_image(*TRACE_SIZE, seed=0))["scores"].max()
            assert best_trace > best_grey + 0.02
            yaml = yaml_with(p.yaml, f"MODEL:\n  ROI_HEADS:\n    SCORE_THRESH_TEST: {(best_grey + best_trace) / 2}\n",
                             out)
            export(yaml, p.weights, out, TRACE_SIZE)
            return out, grey
        return run

    return lambda config: workspace.get(config, ("high_threshold",), make(config))
