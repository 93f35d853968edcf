"""Shared fixtures. Each architecture is built once: a calibrated checkpoint and its conversion (`python -m
d2tf.convert --tensorpack`, with tensorpack's examples/FasterRCNN where found: TENSORPACK_CLIENT), whose verify keeps
every runtime's outputs on the same two images: detectron2, both ONNX files and the other RoIAlign mode's fixed graph
in onnxruntime, the pb, and tensorpack's own model. The stage tests compare those kept outputs pair by pair, so no
test runs a model again. Builds are subprocesses, and the next architecture's build runs while the current one's
tests do: on two cores that overlaps one build's single-threaded stretches (imports, tracing, graph optimisation)
with the other's.

`ARCHS=name,...` (short names, e.g. `make test ARCHS=mask_rcnn_R_50_FPN_3x`) limits the suite to those
architectures plus the tests that use none; `ARCHS=none` runs only the latter.
"""

import concurrent.futures
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from core import contract, zoo
from core.contract import TFLITE
from core.files import load_outputs
from core.model_info import ModelInfo
from core.process import MALLOC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACE_SIZE = (256, 320)  # small inputs keep the suite fast; full sizes belong in the benchmark
OTHER_SIZE = (300, 452)  # another aspect, and not a multiple of 32 (FPN pads inside the graph)
# Test-time counts of the test configs: C4 models push every proposal through res5, so 1000 proposals cost 10x
# what 100 do, in every runtime. The conversion carries these keys (export/supported.py).
RPN_TOPK, DETECTIONS = 100, 30
# The test resize of the test configs (a carried key): verify's photos for the SavedModel are sized around it, so
# detectron2's and the SavedModel's whole inferences run at about the images' size, not at 800 x 1333. The max size
# is above OTHER_SIZE's long side: tensorpack's model sizes its anchor grid by PREPROC.MAX_SIZE and fails on larger
# images.
RESIZE = (256, 480)
# verify's image keys: synthetic image i+1 at each size, seeded with i+1.
IMAGES = {f"synthetic{i + 1}_{h}x{w}": (i + 1, (h, w)) for i, (h, w) in enumerate((TRACE_SIZE, OTHER_SIZE))}
# Architectures built ahead of the one under test, at most BUILDS at a time. Two ahead, not one: some architectures'
# own tests take minutes (the default example's interrupted, deterministic and evaluate runs), and with one ahead
# its build finished early and a core sat idle until those tests were done. Two builds at a time keep the peak
# memory (a build's verify runs four runtimes at once) within the machine's; one more architecture's files (about
# 2 GB) are on disk.
AHEAD, BUILDS = 2, threading.Semaphore(2)
ORDER = pytest.StashKey()  # the architectures in the order their tests run
# The architectures whose builds write and check the SavedModel; the others convert with --no-saved-model. The
# SavedModel is the pb's graph (checked on every architecture) between the test resize and detectron2's
# postprocessing, so these cover what differs: both RoIAlign modes, C4's 14x14 and FPN's 28x28 masks, a box-only
# model and the cascade. Its export and check cost about 30 s of CPU per build (a fifth of one).
SAVED_MODEL_ARCHITECTURES = {zoo.DEFAULT_EXAMPLE, "COCO-Detection/faster_rcnn_R_50_C4_3x.yaml",
                             "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml",
                             "Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml"}
# The architectures whose builds write model.tflite, which verify checks against the pb; the others convert with
# --no-tflite. Its conversion costs 45-95 s of CPU per build, its run about 15: the default example (exact RoIAlign's
# loop, masks) and R50-C4 Faster (tensorpack's RoIAlign, the res5 box head) cover both RoIAlign forms and both heads.
C4_AT_ZOO_PROPOSALS = "COCO-Detection/faster_rcnn_R_50_C4_3x.yaml"  # converted at 1000 proposals (VARIANTS below)
TFLITE_ARCHITECTURES = {zoo.DEFAULT_EXAMPLE, C4_AT_ZOO_PROPOSALS}
# Two builds share two cores: with one thread each for PyTorch and TensorFlow they took 8% less time than with the
# default two each (measured: two builds side by side, 129 s against 140 s).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


def _tensorpack_client():
    """tensorpack's examples/FasterRCNN, unmodified (docs/testing.md): $D2TF_TENSORPACK_CLIENT, else
    ../shared/clients/tensorpack-FasterRCNN beside this checkout; None if neither holds it."""
    candidates = [os.environ.get("D2TF_TENSORPACK_CLIENT"),
                  os.path.join(os.path.dirname(ROOT), "shared", "clients", "tensorpack-FasterRCNN")]
    return next((c for c in candidates if c and os.path.isfile(os.path.join(c, "config.py"))), None)


TENSORPACK_CLIENT = _tensorpack_client()
NO_TENSORPACK = ("tensorpack's examples/FasterRCNN not found: clone https://github.com/tensorpack/tensorpack at commit "
                 "1547a54e8546494614ca31c984a1bfd1d0e24b77 and set D2TF_TENSORPACK_CLIENT=<clone>/examples/FasterRCNN, "
                 "or put that folder at ../shared/clients/tensorpack-FasterRCNN beside this checkout")


def needs_tensorpack():
    """For a test that runs tensorpack's own model: skips it, saying how to get the model, when its client is not
    found; where CI is set (CI has it beside the checkout), fails it instead."""
    if TENSORPACK_CLIENT is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(NO_TENSORPACK)

# Config overrides of a test architecture beyond the suite's counts. CUSTOM is R50-FPN Faster R-CNN with a class count
# and a test resize of no zoo model, which reach tensorpack by other ways than its flags (the class count through a
# registered dataset; MAX_SIZE, which tensorpack rounds up to a multiple of 32 in FPN mode). The graph is the zoo
# config's but for the predictor's width, so this build serves every test of the architecture too.
CUSTOM = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml"
VARIANTS = {CUSTOM: ["MODEL.ROI_HEADS.NUM_CLASSES", 3, "INPUT.MIN_SIZE_TEST", 600, "INPUT.MAX_SIZE_TEST", 1000]}
# Keypoint R-CNN detects one class: from RPN_TOPK proposals its NMS leaves 7-15 persons per image, from 1000 the
# DETECTIONS the suite keeps.
VARIANTS.update({config: ["MODEL.RPN.PRE_NMS_TOPK_TEST", 1000, "MODEL.RPN.POST_NMS_TOPK_TEST", 1000]
                 for config in zoo.KEYPOINTS.values()})
# One C4 model keeps the zoo's proposal counts, so that every runtime, TFLite's included (which runs res5 a chunk of
# proposals at a time), runs res5 on 1000 proposals: the build that converts R50-C4 Faster with its TFLite model.
VARIANTS[C4_AT_ZOO_PROPOSALS] = ["MODEL.RPN.PRE_NMS_TOPK_TEST", 6000, "MODEL.RPN.POST_NMS_TOPK_TEST", 1000]


class Workspace:
    """Artifacts (ONNX files, pbs, verify's outputs) of the architecture under test and the ones built ahead of it,
    in a directory per architecture.

    All twelve architectures' artifacts take over 20 GB, more than a CI machine's disk may have. Tests run grouped
    by architecture (pytest_collection_modifyitems below), so when a test asks for another architecture the
    previous one's directory is deleted; asking for it again later would rebuild it, slowly but correctly.
    """

    def __init__(self, root, order):
        self.root, self.order = root, order
        self.config, self.cache, self.builds = None, {}, {}
        self.lock = threading.Lock()
        self.checkpoints = Checkpoints(root / "checkpoints", order)

    def directory(self, config):
        return self.root / zoo.short_name(config)

    def get(self, config, key, make):
        """The cached `make(directory)` for (config, key), made in that architecture's directory."""
        self._enter(config)
        if key not in self.cache:
            directory = self.directory(config) / "_".join(map(str, key))
            directory.mkdir(parents=True, exist_ok=True)
            self.cache[key] = make(directory)
        return self.cache[key]

    def build(self, config):
        """The Build of `config`, waited for; starts it, and the next AHEAD architectures', if not yet started."""
        self._enter(config)
        return self.start(config).result()

    def _enter(self, config):
        if config == self.config:
            return
        if self.config is not None:
            self.start(self.config).exception()  # its processes must be done before its files go
            self.builds.pop(self.config)
            shutil.rmtree(self.directory(self.config), ignore_errors=True)
        self.config, self.cache = config, {}
        following = self.order[self.order.index(config) + 1:] if config in self.order else []
        for ahead in following[:AHEAD]:
            self.start(ahead)

    def start(self, config):
        """The Future of `config`'s Build, started in a thread of its own unless it was already."""
        with self.lock:
            if config not in self.builds:
                future = concurrent.futures.Future()
                directory = self.directory(config) / "build"
                directory.mkdir(parents=True, exist_ok=True)
                threading.Thread(target=_run_build, args=(future, config, directory, self.checkpoints),
                                 daemon=True).start()
                self.builds[config] = future
            return self.builds[config]


class Checkpoints:
    """The test config and calibrated checkpoint of every architecture, made in the session's order by one
    background process (tests/calibrate_all.py): PyTorch and detectron2 are imported once, not once per build
    (8 s each). All twelve take 2.6 GB; they stay until the session ends."""

    def __init__(self, directory, order):
        directory.mkdir()
        self.yamls = {config: small_config(config, directory) for config in order}
        self.log = directory / "calibrate.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "calibrate_all.py"),
                                             *map(str, self.yamls.values())], stderr=log, stdout=log,
                                            env=dict(os.environ, PYTHONPATH=ROOT, **ONE_THREAD))

    def get(self, config):
        """(yaml, checkpoint) of `config`, waited for."""
        yaml = self.yamls[config]
        weights = yaml.with_suffix(".pkl")
        while not weights.exists():
            if self.process.poll() is not None and not weights.exists():
                raise RuntimeError(f"tests/calibrate_all.py stopped before {weights.name}:\n"
                                   f"{self.log.read_text()[-3000:]}")
            time.sleep(0.5)
        return yaml, weights


def _run_build(future, config, directory, checkpoints):
    try:
        with BUILDS:
            future.set_result(Build.make(config, directory, checkpoints))
    except BaseException as e:  # reported to the tests that wait for it
        future.set_exception(e)


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
        unknown = names - {zoo.short_name(c) for c in zoo.SUITE_ARCHITECTURES}
        if unknown:
            raise pytest.UsageError(f"ARCHS: unknown {sorted(unknown)}; known: "
                                    f"{', '.join(zoo.short_name(c) for c in zoo.SUITE_ARCHITECTURES)}")
        keep = [i for i in items if _architecture(i) is None or zoo.short_name(_architecture(i)) in names]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
    order = {c: i for i, c in enumerate(zoo.SUITE_ARCHITECTURES)}
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


def small_config(config, directory):
    """A self-contained yaml of `config` with the suite's test resize and small proposal and detection counts, then
    its VARIANTS overrides."""
    cfg = zoo.load_config(config).clone()
    cfg.defrost()
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = RESIZE
    cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = cfg.MODEL.RPN.POST_NMS_TOPK_TEST = RPN_TOPK
    cfg.TEST.DETECTIONS_PER_IMAGE = DETECTIONS
    cfg.merge_from_list(VARIANTS.get(config, []))
    path = directory / f"{zoo.short_name(config)}.yaml"
    path.write_text(cfg.dump())
    return path


def roialign_of(config):
    """The RoIAlign mode a test build converts with. Faster and Mask R-CNN of one backbone share the whole box path
    (the calibrated checkpoints differ only in the mask head), so converting the Mask model in exact mode and the
    Faster one in tensorpack mode puts a pb of each mode through every backbone, and each model's other mode is still
    measured by verify in onnxruntime; one TensorFlow translation per architecture instead of two. RetinaNet has no
    RoIAlign, nor do the RPN and the semantic FPN, so verify gates their tensorpack-mode pb as exact; Panoptic FPN is a
    Mask R-CNN; keypoint R-CNN converts in exact mode, so that its keypoints are gated."""
    return "exact" if any(head in zoo.short_name(config) for head in ("mask_rcnn", "panoptic", "keypoint")) else \
        "tensorpack"


class Build:
    """One architecture: its test config and calibrated checkpoint, converted by `python -m d2tf.convert` (RoIAlign
    mode `roialign_of(config)`) with verify's working files kept."""

    def __init__(self, config, directory, checkpoint):
        self.config, self.directory, self.roialign = config, directory, roialign_of(config)
        self.yaml, self.weights = checkpoint
        self.out, self.work = directory / "out", directory / "verify"
        self.saved_model = config in SAVED_MODEL_ARCHITECTURES
        self.tflite = config in TFLITE_ARCHITECTURES

    @classmethod
    def make(cls, config, directory, checkpoints):
        build = cls(config, directory, checkpoints.get(config))
        sizes = ",".join(f"{h}x{w}" for _, (h, w) in IMAGES.values())
        build.result = build.run("-m", "d2tf.convert", "--config", build.yaml, "--weights", build.weights,
                                 "--out", build.out, "--roialign", build.roialign,
                                 "--trace-size", "x".join(map(str, TRACE_SIZE)), "--verify-sizes", sizes,
                                 "--verify-work-dir", build.work,
                                 *(["--tensorpack", TENSORPACK_CLIENT] if TENSORPACK_CLIENT else []),
                                 *([] if build.saved_model else ["--no-saved-model"]),
                                 *([] if build.tflite else ["--no-tflite"]))
        build.info = ModelInfo.read(build.out / "model.json")
        return build

    def run(self, *args):
        result = run_python(*args, **ONE_THREAD)
        if result.returncode != 0:
            raise RuntimeError(f"{zoo.short_name(self.config)}: {' '.join(map(str, args[:2]))} failed:\n"
                               f"{result.stderr[-3000:]}")
        return result

    @property
    def mask(self):
        return self.info.architecture.mask

    def outputs(self, runtime):
        """{image key: outputs (0-based classes)} of one runtime, as verify kept them: detectron2, model.onnx,
        model.fixed.onnx, model.pb, model.tflite, tensorpack (tensorpack's own model), and the other mode's fixed graph
        (`fixed(mode)`)."""
        outputs = load_outputs(self.work / f"{runtime}.npz")
        if runtime in ("model.pb", TFLITE, "tensorpack"):
            outputs = {key: contract.labels_to_classes(value) for key, value in outputs.items()}
        return outputs

    def fixed(self, mode):
        """(path, runtime name) of the fixed graph in RoIAlign `mode`: OUT's own, or verify's switched copy."""
        if mode == self.roialign:
            return self.out / "model.fixed.onnx", "model.fixed.onnx"
        return self.work / f"model.fixed.{mode}.onnx", f"model.fixed.{mode}.onnx"

    def graph(self, mode):
        """The runtime that ran RoIAlign `mode`'s graph closest to the user: the pb in the build's own mode, else
        the switched fixed graph in onnxruntime."""
        return "model.pb" if mode == self.roialign else self.fixed(mode)[1]

    @property
    def translate_seconds(self):
        """tf_import's translate-and-freeze time, from the conversion's progress."""
        line = next(line for line in self.result.stderr.splitlines() if "translating to TensorFlow" in line
                    and "done in" in line)
        return float(line.rsplit("done in", 1)[1].split()[0])


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


def run_python(*args, **environ):
    """A Python subprocess of this venv (TensorFlow work must not share the PyTorch test process)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, **environ)
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

    return yaml_with(model_zoo.get_config_file(base), body, directory)


def yaml_with(yaml, body, directory):
    """A yaml at `directory` that takes the yaml file `yaml` and overrides it with `body`."""
    path = directory / "cfg.yaml"
    path.write_text(f'_BASE_: "{yaml}"\n{body}')
    return str(path)


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
    """Writes `source` with the box head's score threshold `old` (the score_threshold input of its
    NonMaxSuppression, export/per_class_nms.py) set to `new`, a constant of its own so nothing else that shares the
    value changes."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    values = {n.output[0]: numpy_helper.to_array(a.t) for n in model.graph.node if n.op_type == "Constant"
              for a in n.attribute if a.name == "value"}
    found = [n for n in model.graph.node if n.op_type == "NonMaxSuppression" and len(n.input) == 5
             and values.get(n.input[4]) is not None and values[n.input[4]].item() == np.float32(old)]
    assert len(found) == 1, f"{source}: {len(found)} NonMaxSuppression nodes take the score threshold {old}"
    node = found[0]
    node.input[4] = "d2tf_test_score_threshold"  # a Constant node: every initializer is a checkpoint weight
    position = list(model.graph.node).index(node)
    model.graph.node.insert(position, onnx.helper.make_node(
        "Constant", [], [node.input[4]], value=numpy_helper.from_array(np.array([new], np.float32))))
    onnx.save(model, str(destination))
    return destination
