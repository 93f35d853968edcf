"""The suite's pytest hooks and fixtures. The architectures' builds they schedule are tests/builds.py's: each
architecture is built once, and the stage tests compare what its build kept.

`ARCHS=name,...` (short names, e.g. `make test ARCHS=mask_rcnn_R_50_FPN_3x`) limits the suite to those
architectures plus the tests that use none; `ARCHS=none` runs only the latter.
"""

import os

import numpy as np
import pytest

from core import zoo
from core.process import MALLOC
from tests.builds import SUITE, TRACE_SIZE, Workspace

ORDER = pytest.StashKey()  # the architectures in the order their tests run


def _architecture(item):
    """The config a test works on: its `config` parameter, or its `architecture` marker."""
    params = getattr(item, "callspec", None) and item.callspec.params
    marker = item.get_closest_marker("architecture")
    return (params or {}).get("config") or (marker.args[0] if marker else None)


def pytest_configure(config):
    config.addinivalue_line("markers", "architecture(config): the architecture whose artifacts a test uses")
    for name, value in MALLOC.items():  # every child of the suite, not only a conversion's stages (core/process.py)
        os.environ.setdefault(name, value)


def pytest_collection_modifyitems(config, items):
    """Keeps the architectures ARCHS names (all if unset), then groups tests by architecture (tests of none first,
    then zoo order), keeping the order within a group."""
    wanted = os.environ.get("ARCHS")
    if wanted:
        names = set(wanted.split(",")) - {"none"}
        unknown = names - {zoo.short_name(c) for c in SUITE}
        if unknown:
            raise pytest.UsageError(f"ARCHS: unknown {sorted(unknown)}; known: "
                                    f"{', '.join(zoo.short_name(c) for c in SUITE)}")
        keep = [i for i in items if _architecture(i) is None or zoo.short_name(_architecture(i)) in names]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
    order = {c: i for i, c in enumerate(SUITE)}
    items.sort(key=lambda item: -1 if _architecture(item) is None else order.get(_architecture(item), len(order)))
    config.stash[ORDER] = list(dict.fromkeys(_architecture(i) for i in items if _architecture(i) is not None))


@pytest.fixture(scope="session", autouse=True)
def workspace(tmp_path_factory, request):
    """Starts calibrating every architecture and building the first at once, so they overlap the tests that use
    none."""
    workspace = Workspace(tmp_path_factory.mktemp("architectures"), request.config.stash[ORDER])
    if workspace.order:
        workspace.start(workspace.order[0])
    yield workspace
    workspace.checkpoints.process.kill()  # done by now, unless the session ended early


@pytest.fixture(scope="session")
def pipeline(workspace):
    """`pipeline(config)` -> the Build of that architecture (built once per session)."""
    return workspace.build


@pytest.fixture(scope="session")
def checkpoint_path(workspace):
    """`checkpoint_path(config, ext=".pkl")` -> (test config yaml, calibrated checkpoint): the build's, or for
    ".pth" the same weights written in detectron2's training format."""
    from core.checkpoint import load_weights, save_pth

    def get(config, ext=".pkl"):
        build = workspace.build(config)
        if ext == ".pkl":
            return build.yaml, build.weights

        def write(directory):
            save_pth(load_weights(build.weights), directory / ("model" + ext))
            return build.yaml, directory / ("model" + ext)
        return workspace.get(config, ("checkpoint", ext[1:]), write)

    return get


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


@pytest.fixture(scope="session")
def high_threshold(pipeline, workspace):
    """`high_threshold(config)` -> (model.onnx, grey image, threshold): the build's exported graph with the score
    threshold between the best score on a flat grey image and the best on the trace image, so grey gives zero
    detections. The trace bakes SCORE_THRESH_TEST into one constant input of the box head's NMS, so this is the graph
    an export with that threshold writes, without a second export."""
    from core.synthetic import synthetic_image
    from runners import onnx_runner

    grey = np.full((*TRACE_SIZE, 3), 128, np.float32)

    def make(config):
        def run(directory):
            p = pipeline(config)
            session = onnx_runner.session(p.out / "model.onnx")
            best_grey = onnx_runner.run(session, grey)["scores"].max(initial=0)
            best_trace = onnx_runner.run(session, synthetic_image(*TRACE_SIZE, seed=0))["scores"].max()
            assert best_trace > best_grey + 0.02
            threshold = (best_grey + best_trace) / 2
            exported = with_score_threshold(p.out / "model.onnx", directory / "model.onnx",
                                            p.info.test.score_thresh, threshold)
            return exported, grey, threshold
        return run

    return lambda config: workspace.get(config, ("high_threshold",), make(config))


def with_score_threshold(source, destination, old, new):
    """Writes `source` with the box head's score threshold `old` set to `new` (runners/lowered.py)."""
    import onnx

    from runners import lowered

    onnx.save(lowered.onnx_model(onnx.load(str(source)), old, str(source), new), str(destination))
    return destination
