"""The suite's architectures and their builds. Each architecture is built once: a calibrated checkpoint and its
conversion (`python -m d2tf.convert --tensorpack`, with tensorpack's examples/FasterRCNN where found:
TENSORPACK_CLIENT), whose verify keeps every runtime's outputs on the same images (IMAGES, the two synthetic ones):
detectron2, both ONNX files and the other RoIAlign mode's fixed graph in onnxruntime, the
pb, and tensorpack's own model. The stage tests compare those kept outputs pair by pair, so no test runs a model
again. Builds are subprocesses, and the next architecture's build runs while the current one's tests do: on two cores
that overlaps one build's single-threaded stretches (imports, tracing, graph optimisation) with the other's.
tests/conftest.py's hooks and fixtures hand them to the tests.
"""

import concurrent.futures
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from core import contract, zoo
from core.checkpoint import load_weights
from core.contract import TFLITE
from core.files import load_outputs
from core.model_info import ModelInfo
from tests import drawn_configs
from tests.processes import CHILDREN, ROOT, run_python
from tests.trainer import save_model_final
from verify.report import figures_of

# A model as its user trained it, not the zoo's: keys of every kind export/supported.py lets a model tune (a lighter
# backbone, anchors for small and elongated objects, another RPN NMS threshold) and RGB input with ImageNet's
# statistics; its config as detectron2's default_setup dumps it on a training machine (every build's yaml is a whole
# dumped config): the GPU as device, datasets registered only there, the weights training started from; its
# checkpoint as the trainer writes it (TRAINER_PTH), its classifier not peaked (UNDAMPED). Built like the zoo's
# architectures, from a zoo config and overrides. No npz: tensorpack's ResNets have no BasicBlocks. Exact mode, so
# that verify gates the SavedModel's RGB path too.
OWN_MODEL = "own/faster_rcnn_R_34_FPN_tuned_rgb.yaml"
OWN_MODELS = {OWN_MODEL: ("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml", [
    "INPUT.FORMAT", "RGB", "MODEL.PIXEL_MEAN", [123.675, 116.28, 103.53], "MODEL.PIXEL_STD", [58.395, 57.12, 57.375],
    "MODEL.RESNETS.DEPTH", 34, "MODEL.RESNETS.RES2_OUT_CHANNELS", 64, "MODEL.RESNETS.STRIDE_IN_1X1", False,
    "MODEL.ANCHOR_GENERATOR.SIZES", [[16], [32], [64], [128], [256]],
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", [[0.25, 0.5, 1.0, 2.0, 4.0]], "MODEL.RPN.NMS_THRESH", 0.6,
    "MODEL.ROI_HEADS.NUM_CLASSES", 5, "MODEL.DEVICE", "cuda", "DATASETS.TRAIN", ("balloons_train",),
    "DATASETS.TEST", ("balloons_val",), "MODEL.WEIGHTS", "detectron2://ImageNetPretrained/torchvision/R-34.pkl"])}
# Models drawn by tests/drawn_configs.py, each converted like OWN_MODEL: fixed seeds, so that a run is reproducible;
# `python -m tests.drawn_configs SEED...` converts others.
DRAWN_SEEDS = (25, 20)
DRAWN = {f"drawn/seed{seed}.yaml": drawn_configs.draw(seed)[:2] for seed in DRAWN_SEEDS}
DRAWN_14X14_MASKS = "drawn/seed20.yaml"  # a Mask R-CNN whose mask head pools 7x7
OWN_MODELS.update(DRAWN)
SUITE = zoo.SUITE_ARCHITECTURES + list(OWN_MODELS)  # every architecture the suite builds, in build order
CLASS_NAMES = {OWN_MODEL: ["balloon", "kite", "drone", "bird", "plane"]}  # given to the conversion (--class-names)

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
# The architectures whose builds write and check the SavedModel; the others convert with --no-saved-model. The
# SavedModel is the pb's graph (checked on every architecture) between the test resize and detectron2's
# postprocessing, so these cover what differs: both RoIAlign modes, 14x14 (a draw's) and 28x28 masks, a box-only
# model, the cascade and an RGB model's channel order. Its export and check cost about 30 s of CPU per build (a
# fifth of one).
SAVED_MODEL_ARCHITECTURES = {zoo.DEFAULT_EXAMPLE, "COCO-Detection/faster_rcnn_R_50_C4_3x.yaml", DRAWN_14X14_MASKS,
                             "Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml", OWN_MODEL}
# The architectures whose builds write model.tflite, which verify checks against the pb; the others convert with
# --no-tflite. Its conversion costs 45-95 s of CPU per build, its run about 15: the default example (exact RoIAlign's
# loop, masks) and R50-C4 Faster (tensorpack's RoIAlign, the res5 box head) cover both RoIAlign forms and both heads.
# The builds converted from model_final.pth as detectron2's trainer writes it (tests/trainer.py: the model's state
# beside the optimizer's and the scheduler's), made from the calibrated checkpoint.
TRAINER_PTH = {OWN_MODEL}
C4_AT_ZOO_PROPOSALS = "COCO-Detection/faster_rcnn_R_50_C4_3x.yaml"  # converted at 1000 proposals (VARIANTS below)
TFLITE_ARCHITECTURES = {zoo.DEFAULT_EXAMPLE, C4_AT_ZOO_PROPOSALS}
# The build whose verify measures detectron2's own noise (--measure-noise; the others' checks are all within the
# floor tolerances, so theirs do not): keypoint logits, whose scale differs between images, among its outputs.
NOISE_MEASURED = zoo.KEYPOINTS[(50, 1, True)]
# The builds whose checkpoints are calibrated without d2tf's damping (`d2tf calibrate --undamped`), as a user's
# checkpoint calibrated otherwise may be: the zoo's deepest (X101), dilated (DC5) and keypoint architectures. Their
# runtimes differ by more than the floor tolerances (at the suite's sizes masks 2e-4, scores 4e-4, keypoint scores
# 3e-4), so verify measures detectron2's own noise and gates at 10 times it, and the stage tests judge with the
# tolerances verify stated (Build.tolerance).
UNDAMPED_ZOO = {zoo.RESNEXT[True], zoo.DILATED[50, True], NOISE_MEASURED}
# OWN_MODEL too: a user's classifier is not peaked as the suite's calibration peaks it (its BasicBlocks have no
# damped branch, and its runtimes stay within the floor).
UNDAMPED = UNDAMPED_ZOO | {OWN_MODEL}
UNDAMPED_PREFIX = "undamped:"  # before a yaml given to tests/children/calibrate_all.py
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

# Config overrides of a test architecture beyond the suite's counts. CUSTOM is R50-FPN Faster R-CNN as a user may have
# trained it, with an npz that tensorpack's own model runs: a class count and a test resize of no zoo model, which
# reach tensorpack by other ways than its flags (the class count through a registered dataset; MAX_SIZE, which
# tensorpack rounds up to a multiple of 32 in FPN mode); tuned keys that tensorpack's flags express (anchors, the
# RPN's NMS, box regression weights, a 4conv1fc box head, head and FPN widths) and RGB input with ImageNet's
# statistics; and a score threshold above every score on verify's images (at most 0.996), as a detector trained on
# other photos may have: verify still compares every stage, below the threshold. Its box head is 4conv1fc, as the GN
# and SyncBN builds' are (there with norms); the zoo's 2fc head is in every other FPN build.
CUSTOM = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml"
CUSTOM_THRESHOLD = 0.999
CUSTOM_TUNED = {"MODEL.ANCHOR_GENERATOR.SIZES": [[24], [48], [96], [192], [384]],
                "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": [[0.25, 0.5, 1.0, 2.0, 4.0]], "MODEL.RPN.NMS_THRESH": 0.6,
                "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS": [20.0, 20.0, 10.0, 10.0], "MODEL.ROI_BOX_HEAD.NUM_CONV": 4,
                "MODEL.ROI_BOX_HEAD.CONV_DIM": 128, "MODEL.ROI_BOX_HEAD.NUM_FC": 1, "MODEL.ROI_BOX_HEAD.FC_DIM": 512,
                "MODEL.FPN.OUT_CHANNELS": 128}
VARIANTS = {CUSTOM: ["MODEL.ROI_HEADS.NUM_CLASSES", 3, "INPUT.MIN_SIZE_TEST", 600, "INPUT.MAX_SIZE_TEST", 1000,
                     "MODEL.ROI_HEADS.SCORE_THRESH_TEST", CUSTOM_THRESHOLD, "INPUT.FORMAT", "RGB",
                     "MODEL.PIXEL_MEAN", [123.675, 116.28, 103.53], "MODEL.PIXEL_STD", [58.395, 57.12, 57.375],
                     "MODEL.RESNETS.STRIDE_IN_1X1", False, *(item for pair in CUSTOM_TUNED.items() for item in pair)]}
# A Mask R-CNN with anchors for small and elongated objects (the first row), its npz run by tensorpack's own
# model with the flags they map to.
CUSTOM_ANCHORS_MASK = "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml"
VARIANTS[CUSTOM_ANCHORS_MASK] = ["MODEL.ANCHOR_GENERATOR.SIZES", [[16], [32], [64], [128], [256]],
                                 "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", [[0.25, 0.5, 1.0, 2.0, 4.0]]]
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
    by architecture (tests/conftest.py's pytest_collection_modifyitems), so when a test asks for another
    architecture the previous one's directory is deleted; asking for it again later would rebuild it, slowly but
    correctly.
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
    background process (tests/children/calibrate_all.py): PyTorch and detectron2 are imported once, not once per
    build (8 s each). All twelve take 2.6 GB; they stay until the session ends."""

    def __init__(self, directory, order):
        directory.mkdir()
        self.yamls = {config: small_config(config, directory) for config in order}
        self.log = directory / "calibrate.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([sys.executable, os.path.join(CHILDREN, "calibrate_all.py"),
                                             *((UNDAMPED_PREFIX if config in UNDAMPED else "") + str(yaml)
                                               for config, yaml in self.yamls.items())], stderr=log, stdout=log,
                                            env=dict(os.environ, PYTHONPATH=ROOT, **ONE_THREAD))

    def get(self, config):
        """(yaml, checkpoint) of `config`, waited for."""
        yaml = self.yamls[config]
        weights = yaml.with_suffix(".pkl")
        while not weights.exists():
            if self.process.poll() is not None and not weights.exists():
                raise RuntimeError(f"tests/children/calibrate_all.py stopped before {weights.name}:\n"
                                   f"{self.log.read_text()[-3000:]}")
            time.sleep(0.5)
        return yaml, weights


def _run_build(future, config, directory, checkpoints):
    try:
        with BUILDS:
            future.set_result(Build.make(config, directory, checkpoints))
    except BaseException as e:  # reported to the tests that wait for it
        future.set_exception(e)


def small_config(config, directory):
    """A self-contained yaml of `config` (an OWN_MODELS one: its zoo config and overrides) with the suite's test resize
    and small proposal and detection counts, then its VARIANTS overrides."""
    base, overrides = OWN_MODELS.get(config, (config, []))
    cfg = zoo.load_config(base).clone()
    cfg.defrost()
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = RESIZE
    cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = cfg.MODEL.RPN.POST_NMS_TOPK_TEST = RPN_TOPK
    cfg.TEST.DETECTIONS_PER_IMAGE = DETECTIONS
    cfg.merge_from_list(overrides + VARIANTS.get(config, []))
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
    if config in OWN_MODELS:
        return "exact"
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
        if config in TRAINER_PTH:
            build.weights = save_model_final(zoo.load_config(str(build.yaml)), directory,
                                             load_weights(build.weights))[0]
        sizes = ",".join(f"{h}x{w}" for _, (h, w) in IMAGES.values())
        names = directory / "class_names.txt"
        if config in CLASS_NAMES:
            names.write_text("".join(f"{name}\n" for name in CLASS_NAMES[config]))
        build.result = build.run("-m", "d2tf.convert", "--config", build.yaml, "--weights", build.weights,
                                 "--out", build.out, "--roialign", build.roialign,
                                 "--trace-size", "x".join(map(str, TRACE_SIZE)), "--verify-sizes", sizes,
                                 "--verify-work-dir", build.work,
                                 *(["--tensorpack", TENSORPACK_CLIENT] if TENSORPACK_CLIENT else []),
                                 *([] if build.saved_model else ["--no-saved-model"]),
                                 *([] if build.tflite else ["--no-tflite"]),
                                 *(["--class-names", names] if config in CLASS_NAMES else []),
                                 *(["--measure-noise"] if config == NOISE_MEASURED else []))
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

    @property
    def tolerance(self):
        """The tolerances verify stated and gated this build with ({quantity: limit}, report.md's first line): the
        floor (verify.agreement.EXACT), or 10 times detectron2's own noise where that is more (UNDAMPED builds)."""
        return figures_of((self.out / "report.md").read_text())["tolerance"]

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


def config_yaml(directory, base, body):
    """A yaml config at `directory` that takes the zoo config `base` and overrides it with `body`."""
    from detectron2 import model_zoo

    return yaml_with(model_zoo.get_config_file(base), body, directory)


def yaml_with(yaml, body, directory):
    """A yaml at `directory` that takes the yaml file `yaml` and overrides it with `body`."""
    path = directory / "cfg.yaml"
    path.write_text(f'_BASE_: "{yaml}"\n{body}')
    return str(path)
