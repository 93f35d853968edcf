"""`d2tf verify --out OUT`: runs the same images through detectron2 (PyTorch), onnxruntime on OUT/model.onnx and
OUT/model.fixed.onnx, the frozen OUT/model.pb (TensorFlow) and OUT/model.tflite (TFLite, against the pb) if there is
one, then writes OUT/report.md and OUT/verify.png. It also runs OUT/saved_model's serving signature on photos as
they come against detectron2's whole inference (verify/serving.py), unless OUT has none (converted with
--no-saved-model). The images: synthetic ones, and the user's photos (`--verify-images`, verify/photos.py).

The other RoIAlign mode is measured too: verify switches a copy of the fixed graph to it (a temporary file) and runs
that in onnxruntime, so the report shows what tensorpack's sampling (or the exact grid) costs against detectron2.

With `--tensorpack DIR` (a tensorpack examples/FasterRCNN checkout) it also runs tensorpack's own model on
OUT/model.npz as OUT/tensorpack_config.py configures it, and reports it against detectron2 and against the
tensorpack-mode graph (the pb, or in exact mode the switched copy).

The checks that must be exact gate (verify.agreement.EXACT): when one is outside its tolerance, or detectron2
detected nothing on any image, so that nothing was compared, verify writes the report (FAILED at its top) and exits
with status 3. Before running anything, it checks that the weights are still those export converted (their sha256).

Every stage runs with the model's score threshold lowered (runners/lowered.py: each runner first checks that its
model's threshold is the model info's), so each compares the detections the per-image cap lets through, whatever the
threshold and the images; the threshold is then checked on detectron2's scores and each stage's (agreement.compare's
threshold_flips). The SavedModel runs at the model's own threshold, as it is served.
"""

import concurrent.futures
import contextlib
import os
import threading

import numpy as np

from core import D2TFError, cli, contract
from core.cli import parse_size
from core.contract import TFLITE, TFLITE_VARIANTS
from core.digest import file_sha256
from core.files import hidden_work_dir, load_onnx, load_outputs, save_outputs, write_atomic
from core.metadata import read_info, read_passes, record_passes, roialign_mode
from core.process import kill_running
from core.synthetic import synthetic_image
from evaluate.preprocess import resized_shape, swap_channels
from runners import onnx_runner
from runners.processes import (
    detectron2_on_images,
    pb_on_images,
    saved_model_on_images,
    tensorpack_on_images,
    tflite_on_images,
)
from verify import memory, report, serving
from verify.agreement import (
    EXACT,
    agreement_ap,
    detections_per_image,
    compare,
    inexact,
    kept_set,
    mask_iou,
    measure,
    noise_tolerance,
    stated_tolerance,
)
from verify.draw import side_by_side
from verify.photos import read_photos

DEFAULT_SIZES = ((480, 640), (600, 904))  # two aspects; 904 is not a multiple of 32 (FPN pads inside the graph)
VERIFY_IMAGES_HELP = ("photos (jpg, png, any size; turned upright as their EXIF orientation says) verified beside the "
                      "synthetic images: by every stage, resized as the config's test resize does, and by the "
                      "SavedModel as they come")
NOISE = "detectron2.native"  # detectron2 on the images with PyTorch's native convolutions: its own round-off
MEASURE_NOISE_HELP = ("run detectron2 on the images a second time, with PyTorch's native convolutions, and report how "
                      "far it is from itself, which sets the tolerances (by default only when a check is outside the "
                      "floor tolerances, where that may pass it)")
MEMORY_SHARE = 0.9  # of the memory available when verify starts, what its runtimes' estimates may add up to


class VerificationFailed(D2TFError):
    """A stage that must be exact is outside its tolerance, or the images checked nothing; report.md is written
    and says FAILED at its top."""

    exit_status = 3


def verify(out_dir, sizes=DEFAULT_SIZES, coco_dir=None, work_dir=None, tensorpack_dir=None, photo_paths=None,
           measure_noise=False):
    """Writes report.md and verify.png into out_dir; returns the report's figures, or, once both are written, raises
    VerificationFailed if the report says FAILED. `photo_paths`: image files verified beside the synthetic images of
    `sizes`. detectron2's own noise, which may raise the tolerances above the floor (verify.agreement.EXACT), is
    measured where a check is outside the floor, or always with `measure_noise`.
    With `work_dir`, verify's working files stay there: images.npz,
    each runtime's outputs as `<runtime>.npz` (entries `<image>/<output>`; 0-based classes, but the TensorFlow
    runtimes' own 1-based labels in model.pb.npz and tensorpack.npz) and the other RoIAlign mode's fixed graph."""
    fixed_path = os.path.join(out_dir, contract.FIXED_ONNX)
    if not os.path.isfile(fixed_path):
        raise D2TFError(f"{fixed_path} not found: verify reads a directory written by `make convert`")
    fixed = load_onnx(fixed_path)
    info, mode = read_info(fixed, fixed_path), roialign_mode(fixed, fixed_path)
    pooled = bool(info.pooler)  # without RoIAlign (RetinaNet) either mode's graph is detectron2's, gated as exact
    threshold = info.test.score_thresh  # None for a model that thresholds no scores (an RPN, a semantic FPN)
    _check_weights(info.source)
    real = read_photos(photo_paths or (), info)
    if tensorpack_dir:
        tensorpack_dir = _tensorpack_client(tensorpack_dir, out_dir, info)
    other = "exact" if mode == "tensorpack" else "tensorpack"
    images = {**_synthetic(enumerate(sizes, start=1)), **_inputs(real)}
    served = os.path.isdir(os.path.join(out_dir, contract.SAVED_MODEL))
    with _work_dir(work_dir, out_dir) as work:
        photos, photos_npz = _photos(info, range(1, len(sizes) + 1), real, work, served)
        outputs = _run_all(out_dir, info, fixed, other, images, photos_npz, work, tensorpack_dir)
        on_photos = {runtime: outputs.pop(runtime) for runtime in serving.RUNTIMES if runtime in outputs}
        shapes = {key: list(image.shape[:2]) for key, image in images.items()}
        files = {photo.key: dict(path=photo.path, size=list(photo.rgb.shape[:2])) for photo in real}
        kept = kept_set(info, lowered=True)  # the stages ran with the threshold lowered

        def judged(noise):
            serving_row = serving.row(on_photos, {key: list(photo.shape[:2]) for key, photo in photos.items()},
                                      exact=mode == "exact" or not pooled, kept=kept_set(info),
                                      tolerance=noise_tolerance(noise or {})) if served else None
            return _figures(outputs, mode, other, shapes, info.architecture.backbone, serving_row, pooled, kept,
                            files, threshold, noise)

        figures = judged(None)
        if measure_noise or (figures["failures"] and _count(outputs["detectron2"]) != 0):
            again = detectron2_on_images(info, os.path.join(work, "images.npz"), os.path.join(work, f"{NOISE}.npz"),
                                         lower_from=threshold, native=True)
            # on every image: the scale of a model's outputs, and of their round-off, may differ between images
            figures = judged(measure(outputs["detectron2"], again, kept))
        figures["smaller_tflite"] = _smaller_tflite(outputs, out_dir)
        evaluation = _evaluate(out_dir, coco_dir, work) if coco_dir else None
    first = report.shown_image(figures)
    panels = [("detectron2", outputs["detectron2"][first]), (f"model.pb ({mode})", outputs["model.pb"][first])]
    png = side_by_side(swap_channels(images[first], info.input.format), panels, info.keypoint_skeleton,
                       info.class_names)
    text = report.render(info, mode, figures, evaluation)
    write_atomic(os.path.join(out_dir, contract.VERIFY_PNG), png)
    write_atomic(os.path.join(out_dir, contract.REPORT), text.encode())
    cli.log(f"[d2tf] wrote {os.path.join(out_dir, 'report.md')} and verify.png")
    failures = figures["failures"]
    if failures:
        more = f"; {len(failures) - 1} more in report.md" if len(failures) > 1 else ""
        raise VerificationFailed(f"verification FAILED: {failures[0]}{more}")
    return figures


def _check_weights(source):
    """detectron2 must run the weights export converted: one line when they are gone or have changed since."""
    path, recorded = source.weights, source.weights_sha256
    if not os.path.isfile(path):
        raise D2TFError(f"the weights export converted are gone: {path} not found (verify runs detectron2 on them)")
    digest = file_sha256(path)
    if digest != recorded:
        raise D2TFError(f"{path} changed since export (sha256 {digest[:16]}..., export recorded {recorded[:16]}...): "
                        "restore it, or convert again")


def _synthetic(seeded):
    """{key: image} of synthetic images given as (seed, (height, width)) pairs."""
    return {f"synthetic{seed}_{h}x{w}": synthetic_image(h, w, seed=seed) for seed, (h, w) in seeded}


def _inputs(photos):
    """{key: the graph's input} of verify.photos.Photos."""
    return {photo.key: photo.image for photo in photos}


def _photos(info, seeds, real, work, served):
    """({key: uint8 RGB photo}: serving.photos of `seeds` and the Photos `real` as they come, the npz in `work`
    holding them); ({}, None) unless the SavedModel is `served`."""
    if not served:
        return {}, None
    photos = {**serving.photos(info, seeds), **{photo.key: photo.rgb for photo in real}}
    npz = os.path.join(work, "photos.npz")
    np.savez(npz, **photos)
    return photos, npz


def _count(outputs):
    """Detections (an RPN's proposals) over all images; None for a model that detects nothing by design (a semantic
    FPN)."""
    counts = detections_per_image(outputs).values()
    return None if None in counts else sum(counts)


def _run_all(out_dir, info, fixed, other, images, photos_npz, work, tensorpack_dir):
    """{runtime: {image key: outputs}} on `images`, each with the score threshold lowered: detectron2, the pb, the
    TFLite model (if OUT has one) and tensorpack's model in their own processes while onnxruntime runs both ONNX
    files and the other mode's copy here; and serving.RUNTIMES on the photos in `photos_npz` (if any), at the
    model's threshold: the SavedModel in a process of its own, detectron2's whole inference in detectron2's.
    Runtimes run side by side as far as their estimated peaks fit in the memory available (verify/memory.py)."""
    images_npz = os.path.join(work, "images.npz")
    np.savez(images_npz, **images)
    budget, needs = memory.Budget(int(memory.available() * MEMORY_SHARE)), _needs(fixed, info, images, photos_npz)
    lower_from = info.test.score_thresh
    # detectron2 and the pb run in their own processes while onnxruntime runs here: on a 2-core machine this took
    # 22 s against 34 s one after another (R50-FPN, two small images).
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:

        stopping = threading.Event()  # set when verify is interrupted: a runtime still waiting then never starts

        def start(name, runtime, *args):
            children[name] = pool.submit(_within, budget, needs[name], stopping, name, runtime, *args)

        try:
            children = {}
            photos_out = os.path.join(work, "detectron2.photos.npz")
            start("detectron2", detectron2_on_images, info, images_npz, os.path.join(work, "detectron2.npz"),
                  (photos_npz, photos_out) if photos_npz else None, lower_from)
            if photos_npz:
                start("saved_model", saved_model_on_images, os.path.join(out_dir, contract.SAVED_MODEL), photos_npz,
                      os.path.join(work, "saved_model.npz"))
            start("model.pb", pb_on_images, os.path.join(out_dir, contract.PB), images_npz,
                  os.path.join(work, "model.pb.npz"), lower_from)
            for name in tflite_models(out_dir):
                needs.setdefault(name, needs[TFLITE])
                start(name, tflite_on_images, os.path.join(out_dir, name), images_npz,
                      os.path.join(work, f"{name}.npz"), lower_from)
            if tensorpack_dir:
                start("tensorpack", tensorpack_on_images, tensorpack_dir, out_dir, images_npz,
                      os.path.join(work, "tensorpack.npz"), lower_from)
            with budget.hold(needs["onnxruntime"]):
                outputs = {name: _onnxruntime(os.path.join(out_dir, name), images, work, lower_from)
                           for name in ("model.onnx", "model.fixed.onnx")}
                outputs[f"other:{other}"] = _onnxruntime(_other_mode(fixed, other, work), images, work, lower_from)
            outputs.update({name: child.result() for name, child in children.items()})
            if photos_npz:  # written by detectron2's process beside the images
                outputs["detectron2.photos"] = load_outputs(photos_out)
        except BaseException:
            stopping.set()
            kill_running()
            raise
    return outputs


def _needs(fixed, info, images, photos_npz):
    """{runtime: estimated peak bytes} (verify/memory.py) for `images`, and for the SavedModel and detectron2's whole
    inference the photos: the model runs each at its test resize, and a mask model pastes a mask per detection at
    the photo's size."""
    weights = memory.weight_bytes(fixed)
    pooled = memory.pooled_bytes(fixed, info.test.rpn_post_nms_topk or 0)
    pixels = max(image.shape[0] * image.shape[1] for image in images.values())
    sizes = []
    if photos_npz:
        with np.load(photos_npz) as photos:
            sizes = [photos[key].shape[:2] for key in photos.files]
    resize = info.resize.min_size_test, info.resize.max_size_test
    resized = max((np.prod(resized_shape(*size, *resize)) for size in sizes), default=0)
    masks = info.test.detections_per_image if info.architecture.mask else 0  # pasted on each photo, at most
    pasted = masks * max((np.prod(size) for size in sizes), default=0)
    needs = {runtime: memory.estimate(runtime, weights, pixels, pooled) for runtime in memory.FACTORS}
    needs["saved_model"] = memory.estimate("saved_model", weights, resized, pooled, pasted)
    needs["detectron2"] = memory.estimate("detectron2", weights, max(pixels, resized), pooled, pasted)
    return needs


def _within(budget, need, stopping, name, runtime, *args):
    """runtime(*args) once its estimated peak `need` fits in the `budget`, saying so if it must wait; None without
    running it if `stopping` is set by then."""
    def waiting():
        cli.log(f"[d2tf] {name} waits for memory: it may take {need / memory.GIB:.1f} GiB, and the runtimes "
                f"running may take {budget.held / memory.GIB:.1f} of the {budget.total / memory.GIB:.1f} GiB available")

    with budget.hold(need, waiting):
        return None if stopping.is_set() else runtime(*args)


@contextlib.contextmanager
def _work_dir(path, out_dir):
    """`path`, kept; without it a temporary directory hidden inside out_dir, where the next conversion into out_dir
    removes it if this process is killed (one in /tmp stayed there)."""
    if path is None:
        with hidden_work_dir(out_dir, "verify") as work:
            yield work
    else:
        os.makedirs(path, exist_ok=True)
        yield os.fspath(path)


def tensorpack_computes_the_graph(backbone, height, width):
    """Whether tensorpack's own model computes what the tensorpack-mode graph computes on an image of this size.
    tensorpack's C4 backbone slices off the last row and column before each stride-2 1x1 conv (modeling/backbone.py,
    resnet_bottleneck and resnet_shortcut with STRIDE_1X1), so where a stage's input side is odd its map is one cell
    smaller than detectron2's, and the 3x3 convs after it carry the difference in from the bottom/right edge (0.27
    relative at the edge, 1e-3 eight res4 cells in). That happens unless both sides are multiples of 16. FPN pads
    the image to a multiple of 32 first, so every size matches."""
    return backbone == "FPN" or (height % 16 == 0 and width % 16 == 0)


def _figures(outputs, mode, other, shapes, backbone, serving_row, pooled=True, kept=None, files=None, threshold=None,
             noise=None):
    """Each stage against the one before it, agreement with detectron2 and, when it ran, tensorpack's model, on the
    images `shapes` ({key: [height, width]}): those of `files` ({key: {path, size as read}}: the photos) and
    synthetic ones; detectron2's detections on each (and how many score above the model's `threshold`), and the
    SavedModel's row (`serving_row`, on its photos). `kept`: the KeptSet the stages ran with; `noise`: measure()'s
    row of detectron2 against itself, whose spread sets the tolerance (verify.agreement.noise_tolerance; EXACT
    without it). The rows that must be exact carry their failures, and `failures` lists them all. In tensorpack mode
    model.fixed.onnx differs from model.onnx by design, so the fixed graph switched to exact RoIAlign stands in for
    it. A model that does not pool (`pooled` False) is the same graph in both modes: every row is exact."""
    stages = [("model.onnx", "detectron2", True), ("model.fixed.onnx", "model.onnx", mode == "exact" or not pooled)]
    if mode == "tensorpack":
        stages.append((f"other:{other}", "model.onnx", True))
    stages.append(("model.pb", "model.fixed.onnx", True))
    if TFLITE in outputs:
        stages.append((TFLITE, "model.pb", True))
    tolerance = noise_tolerance(noise or {})

    def row(candidate, against, exact, keys=None):
        return _row(outputs, candidate, against, exact, keys, kept, threshold, tolerance)

    figures = {"stages": [dict(stage=s, against=a, **row(s, a, exact)) for s, a, exact in stages], "agreement": []}
    for name, roialign, runtime in (("model.pb", mode, "TensorFlow"), (f"other:{other}", other, "onnxruntime")):
        agreement = dict(model=name, roialign=roialign, runtime=runtime,
                         **row(name, "detectron2", roialign == "exact" or not pooled))
        agreement["ap"], agreement["ap50"] = agreement_ap(outputs["detectron2"], outputs[name])
        figures["agreement"].append(agreement)
    if "tensorpack" in outputs:
        graph = "model.pb" if mode == "tensorpack" else f"other:{other}"
        same = [key for key, (h, w) in shapes.items() if tensorpack_computes_the_graph(backbone, h, w)]
        figures["tensorpack"] = [
            dict(against="detectron2", images=len(shapes), **row("tensorpack", "detectron2", False)),
            dict(against=graph, images=len(same or shapes), **row("tensorpack", graph, bool(same), same or None)),
        ]
    figures.update(images=shapes, files=files or {}, detections=detections_per_image(outputs["detectron2"]),
                   score_threshold=threshold,
                   above_threshold={} if threshold is None else detections_per_image(outputs["detectron2"], threshold),
                   tolerance=stated_tolerance(tolerance), noise=noise,
                   serving=[serving_row] if serving_row else [])
    figures["failures"] = _failures(figures, _count(outputs["detectron2"]))
    return figures


def tflite_models(out_dir):
    """The TFLite models of OUT to run: model.tflite, if there is one, and the smaller variants written with it
    (contract.TFLITE_VARIANTS), not older than it: tf_import writes them after it, and leaves an earlier run's or a
    user's as they were, which are not this model's."""
    path = os.path.join(out_dir, TFLITE)
    if not os.path.isfile(path):
        return []
    written = os.path.getmtime(path)
    variants = [os.path.join(out_dir, name) for name in TFLITE_VARIANTS.values()]
    return [TFLITE, *(os.path.basename(p) for p in variants if os.path.isfile(p) and os.path.getmtime(p) >= written)]


def _smaller_tflite(outputs, out_dir):
    """What each smaller TFLite model in OUT (contract.TFLITE_VARIANTS) costs against detectron2, measured, not
    gated, after model.tflite's own row (float32, in the conversion's RoIAlign mode as they are): its size and
    model.tflite's, the shares of detections matched at IoU 0.5 and 0.9, agreement AP, the mean mask IoU of those
    matched at 0.5 and their largest score difference; [] without smaller models."""
    rows = []
    variants = [(variant, name) for variant, name in TFLITE_VARIANTS.items() if name in outputs]
    for variant, name in [("float32", TFLITE)] * bool(variants) + variants:
        loose, close = (compare(outputs["detectron2"], outputs[name], iou) for iou in (0.5, 0.9))
        ap, ap50 = agreement_ap(outputs["detectron2"], outputs[name])
        rows.append(dict(model=name, variant=variant, mib=os.path.getsize(os.path.join(out_dir, name)) / 2**20,
                         float32_mib=os.path.getsize(os.path.join(out_dir, TFLITE)) / 2**20,
                         matched50=loose["agreement"], matched90=close["agreement"], ap=ap, ap50=ap50,
                         mask_iou=mask_iou(outputs["detectron2"], outputs[name]), score=loose["score"]))
    return rows


def _row(outputs, candidate, against, exact, keys=None, kept=None, threshold=None, tolerance=EXACT):
    """measure() of runtime `candidate` against runtime `against` on the images `keys` (default: all); if it must be
    `exact` (within `tolerance`), what is not, as one line naming both."""
    reference = outputs[against] if keys is None else {key: outputs[against][key] for key in keys}
    row = measure(reference, outputs[candidate], kept, threshold, tolerance)
    problems = inexact(row) if exact else []
    label = f"{report.runtime_name(candidate)} against {report.runtime_name(against)}"
    row.update(exact=exact, failures=[f"{label}: {'; '.join(problems)}"] if problems else [])
    return row


def _failures(figures, detections):
    """Why the verification failed, one line each; [] when it passed."""
    lines = [line for section in ("stages", "agreement", "tensorpack", "serving") for row in figures.get(section, ())
             for line in row["failures"]]
    if detections == 0:
        photos = ", ".join(os.path.basename(file["path"]) for file in figures["files"].values())
        synthetic = len(figures["images"]) - len(figures["files"])
        lines.insert(0, f"detectron2 detected nothing on any of the {synthetic} synthetic images"
                        + (f" nor on {photos}" if photos else "") + ", even with its score threshold lowered")
    return lines


def _tensorpack_client(client_dir, out_dir, info):
    """The client directory to run, or None (logged) when the conversion wrote no tensorpack npz."""
    from runners.tensorpack_runner import check_client, check_inputs
    from tf_import.tensorpack_config import NotExpressible, check_expressible

    check_client(client_dir)
    try:
        check_expressible(info)
    except NotExpressible as e:
        cli.log(f"[d2tf] --tensorpack: nothing to run, the conversion wrote no tensorpack npz ({e})")
        return None
    check_inputs(client_dir, out_dir)  # here too, so a missing file fails before the other runtimes run
    return os.path.abspath(client_dir)


def _onnxruntime(path, images, work, lower_from=None):
    """onnxruntime's outputs of one ONNX file (`lower_from` as the runners'), also saved as `<file name>.npz` in the
    work directory."""
    with cli.step(f"running {os.path.basename(path)} in onnxruntime"):
        session = onnx_runner.session(path, lower_from)
        outputs = {key: onnx_runner.run(session, image) for key, image in images.items()}
    save_outputs(os.path.join(work, os.path.basename(path) + ".npz"), outputs)
    return outputs


def _other_mode(fixed, mode, work):
    """The fixed graph switched to the other RoIAlign mode, in the work directory. Only graphfix's roialign pass
    depends on the mode, so this equals fixing model.onnx again, in a second instead of the whole pipeline's time."""
    from graphfix.passes import roialign

    with cli.step(f"switching a copy of the fixed graph to --roialign {mode}, to measure that mode too"):
        passes = read_passes(fixed)
        roialign.run(fixed, mode)
        record_passes(fixed, [(name, mode if name == "roialign" else option) for name, option in passes.items()])
        path = os.path.join(work, f"model.fixed.{mode}.onnx")
        write_atomic(path, fixed.SerializeToString())
    return path


def _evaluate(out_dir, coco_dir, work):
    from evaluate.run import evaluate

    return evaluate(out_dir, coco_dir, work)


def parse_sizes(text):
    return tuple(parse_size(s) for s in text.split(","))


def main(argv=None):
    parser = cli.ArgumentParser(
        prog="d2tf verify", description=__doc__.split("\n\n")[0],
        epilog="Reads OUT/model.onnx, model.fixed.onnx, model.pb, model.tflite and saved_model/ (those written), the "
        "weights (.pkl/.pth) the conversion recorded, the --verify-images files, with --tensorpack OUT/model.npz "
        "and tensorpack_config.py, with --evaluate COCO_DIR's images and instances json. Writes OUT/report.md and "
        "OUT/verify.png; with --work-dir, DIR/images.npz, "
        "DIR/<runtime>.npz per runtime and the other RoIAlign mode's DIR/model.fixed.<mode>.onnx.")
    parser.add_argument("--out", required=True, help="a directory written by `d2tf convert`")
    parser.add_argument("--sizes", type=parse_sizes, default=DEFAULT_SIZES, metavar="HxW[,HxW...]",
                        help="sizes of the synthetic verification images (default: 480x640,600x904)")
    parser.add_argument("--verify-images", nargs="+", metavar="IMAGE", help=VERIFY_IMAGES_HELP)
    parser.add_argument("--evaluate", metavar="COCO_DIR",
                        help="also evaluate detectron2 and the pb on a COCO-style dir (images + instances json)")
    parser.add_argument("--work-dir", metavar="DIR", help="keep verify's working files in DIR: the images, each "
                        "runtime's raw outputs as npz, the other RoIAlign mode's fixed graph")
    parser.add_argument("--tensorpack", metavar="DIR", help="also run tensorpack's own model (DIR: a tensorpack "
                        "examples/FasterRCNN checkout) on model.npz and tensorpack_config.py")
    parser.add_argument("--measure-noise", action="store_true", help=MEASURE_NOISE_HELP)
    args = parser.parse_args(argv)
    verify(args.out, args.sizes, args.evaluate, args.work_dir, args.tensorpack, args.verify_images, args.measure_noise)

