"""The whole pipeline (`python -m d2tf.convert`, what `make convert` runs): its files, its verification report,
reruns, interruptions and user errors. The stage tests (test_export, test_graphfix_models, test_tf_import) check
the same run's intermediate files in detail."""

import os
import signal
import subprocess
import sys
import time

import onnx
import pytest

from core import contract, zoo
from core.contract import PB, SAVED_MODEL, TENSORPACK_FILES, TFLITE
from core.files import HIDDEN, remove_abandoned
from d2tf.publish import FILES
from d2tf.zoo_table import record_agreement, recorded_agreement
from tests.builds import (
    C4_AT_ZOO_PROPOSALS,
    CLASS_NAMES,
    CUSTOM,
    CUSTOM_THRESHOLD,
    DETECTIONS,
    DRAWN,
    NOISE_MEASURED,
    OWN_MODEL,
    SUITE,
    UNDAMPED,
    UNDAMPED_ZOO,
    yaml_with,
)
from tests.processes import ROOT, run_python
from tf_import import roi_chunks
from verify.agreement import EXACT, inexact, noise_tolerance, stated_tolerance
from verify.report import figures_of

EXAMPLE = zoo.DEFAULT_EXAMPLE


@pytest.mark.parametrize("config", SUITE, ids=zoo.short_name)
def test_pipeline_writes_every_file_and_agrees_exactly_with_detectron2(config, pipeline, measure):
    p = pipeline(config)
    npz = config in zoo.NPZ_CONFIGS
    expected = (FILES + (PB,) + ((SAVED_MODEL,) if p.saved_model else ()) + ((TFLITE,) if p.tflite else ())
                + (TENSORPACK_FILES if npz else ()))
    assert sorted(set(os.listdir(p.out)) - {HIDDEN}) == sorted(expected)
    for i, stage in enumerate(("export", "graphfix", "tf_import", "verify"), start=1):
        assert f"[d2tf] stage {i}/4: {stage}: done in" in p.result.stderr
    if npz:
        assert p.result.stdout.strip() == (p.out / "flags.txt").read_text().strip(), "the flags line is printed"
    else:
        assert p.result.stdout == "" and "\n    [d2tf] no tensorpack npz: " in p.result.stderr, "and why not"
    figures = figures_of((p.out / "report.md").read_text())
    detects, seg = contract.has_detections(p.info.outputs), "sem_seg" in p.info.outputs
    for stage in figures["stages"]:  # every stage keeps every detection, but graphfix's RoIAlign in tensorpack mode
        if p.roialign == "exact" or stage["stage"] != "model.fixed.onnx":
            assert stage["detections"] == detects and not stage["failures"], stage
            assert not detects or (stage["agreement"] == 1.0 and stage["reference"] >= 10), stage
            assert not seg or stage["sem_seg"] <= 1e-4, stage
    assert [s["stage"] for s in figures["stages"]][-1] == ("model.tflite" if p.tflite else "model.pb"), (
        "the TFLite model is checked against the pb when written")
    rows = {row["roialign"]: row for row in figures["agreement"]}
    assert rows[p.roialign]["model"] == "model.pb", "the pb is the build's mode, the other mode ran in onnxruntime"
    exact, tensorpack = rows["exact"], rows["tensorpack"]
    assert rows[p.roialign]["exact"] == (p.roialign == "exact" or not p.info.pooler), (
        "the pb is gated as exact in exact mode, and in either mode without RoIAlign (RetinaNet)")
    assert not exact["failures"] and (not seg or exact["sem_seg"] <= 1e-4)
    if detects:
        # damped checkpoints: every detection matched at IoU >= 0.99 (no failures: the others are at the edge)
        assert exact["strict_agreement"] == 1.0 or config in UNDAMPED, "exact mode: every detection matched"
        assert exact["box"] <= p.tolerance["box"] and exact["score"] <= p.tolerance["score"]
        assert exact["ap"] == pytest.approx(1.0, abs=1e-9) or config in UNDAMPED
    if any(pooler.type == "ROIAlignV2" and pooler.sampling_ratio != 2 for pooler in p.info.pooler.values()):
        # tensorpack's RoIAlign samples 2x2 points per bin: a change of the computation of the size of a translation
        # error, which the exact gate, at the tolerance this model's own noise sets, must catch
        assert tensorpack["agreement"] >= 0.7 and inexact(tensorpack) != [], "tensorpack's RoIAlign is close, not equal"
    else:  # no RoIAlign (RetinaNet, RPN, semantic FPN), ROIAlign v1 (no tensorpack RoIAlign to switch to) or one
        # that samples 2x2 per bin already: both modes are detectron2's
        assert inexact(tensorpack) == [], tensorpack
    served = _served(p, figures, (p.out / "report.md").read_text())
    recorded = recorded_agreement().get(zoo.short_name(config))
    if recorded and not os.environ.get("D2TF_RECORD_AGREEMENT"):  # docs/zoo.md's claims hold for this run
        assert recorded["runtime"] == exact["runtime"], recorded
        # an undamped build's matched share moves with round-off at the edge of the kept set (its graph's, which
        # any change of the graph changes); the gate above holds the rest to its tolerance
        assert recorded["matched_iou99"] == (exact["strict_agreement"] if detects else None) or config in UNDAMPED, (
            recorded)
    if os.environ.get("D2TF_RECORD_AGREEMENT") and config in zoo.SUITE_ARCHITECTURES:  # docs/zoo.md's figures
        record_agreement(os.environ["D2TF_RECORD_AGREEMENT"], zoo.short_name(config), {
            "runtime": exact["runtime"], "matched_iou99": exact["strict_agreement"] if detects else None,
            "box_px": exact["box"], "score": exact["score"], "mask": exact["mask"], "sem_seg": exact["sem_seg"],
            "sem_seg_argmax": exact["sem_seg_argmax"], "keypoint_px": exact["keypoint"],
            "keypoint_score": exact["keypoint_score"], "keypoints_moved": exact["keypoints_moved"],
            "keypoints_regridded": exact["keypoints_regridded"], "at_the_edge": exact["at_the_edge"],
            "tolerance": p.tolerance})
    measure("agreement with detectron2 (report.md, synthetic 256x320 and 300x452)",
            architecture=zoo.short_name(config), pb=p.roialign, exact_matched_iou99=f"{exact['strict_agreement']:.0%}",
            exact_ap=exact["ap"], exact_max_box_px=exact["box"],
            tensorpack_matched_iou90=f"{tensorpack['agreement']:.0%}", tensorpack_ap=tensorpack["ap"],
            tensorpack_ap50=tensorpack["ap50"], tensorpack_max_box_px=tensorpack["box"],
            saved_model_matched_iou99=f"{served['strict_agreement']:.0%}" if served else "not written",
            saved_model_max_box_px=served and served["box"],
            saved_model_mask_pixels_equal=served and served["mask_equal"])


@pytest.mark.architecture(OWN_MODEL)
def test_a_users_tuned_rgb_model_converts_and_says_what_it_tuned(pipeline):
    """A model as a user trained it (tests/builds.py, OWN_MODEL: its dumped config, the trainer's model_final.pth, an
    unpeaked classifier): converted and gated exact like the zoo's
    (test_pipeline_writes_every_file_and_agrees_exactly_with_detectron2), its SavedModel's RGB path included; its
    tuned keys recorded in the model info, named in the log, and the reason there is no npz."""
    p = pipeline(OWN_MODEL)
    tuned = {"MODEL.ANCHOR_GENERATOR.SIZES": [[16], [32], [64], [128], [256]],
             "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS": [[0.25, 0.5, 1.0, 2.0, 4.0]], "MODEL.RPN.NMS_THRESH": 0.6,
             "MODEL.RESNETS.DEPTH": 34, "MODEL.RESNETS.RES2_OUT_CHANNELS": 64}
    assert (p.info.architecture.name, p.info.input.format, p.info.tuned) == ("R34-FPN Faster R-CNN", "RGB", tuned)
    assert p.info.class_names == CLASS_NAMES[OWN_MODEL], "its --class-names"
    assert p.info.source.weights.endswith("model_final.pth"), "the trainer's checkpoint (builds.TRAINER_PTH)"
    assert "[d2tf] architecture: R34-FPN Faster R-CNN; tuned MODEL.ANCHOR_GENERATOR.SIZES=" in p.result.stderr
    assert ("[d2tf] no tensorpack npz: MODEL.RESNETS.DEPTH=34: detectron2 builds it of BasicBlocks; tensorpack's "
            "ResNets are bottleneck ones (50, 101, 152)") in p.result.stderr


@pytest.mark.architecture(CUSTOM)
def test_a_model_that_keeps_nothing_at_its_threshold_is_verified_below_it(pipeline):
    """CUSTOM's score threshold (tests/builds.py) keeps none of detectron2's detections on verify's images: every
    stage still compared the detections the per-image cap lets through, with the threshold lowered, and passed."""
    p = pipeline(CUSTOM)
    figures = figures_of((p.out / "report.md").read_text())
    assert (p.info.test.score_thresh, figures["score_threshold"]) == (CUSTOM_THRESHOLD, CUSTOM_THRESHOLD)
    assert set(figures["above_threshold"].values()) == {0}, "nothing kept at the model's own threshold"
    assert set(figures["detections"].values()) == {DETECTIONS}, "the cap's worth compared instead"
    exact = [row for section in ("stages", "agreement", "tensorpack") for row in figures[section] if row["exact"]]
    assert len(exact) >= 4 and figures["failures"] == []
    assert all(row["strict_agreement"] == 1.0 and row["reference"] == 2 * DETECTIONS for row in exact), exact


@pytest.mark.architecture(NOISE_MEASURED)
def test_detectron2s_own_noise_is_measured_and_sets_the_tolerances(pipeline):
    """--measure-noise: detectron2 ran the images again with PyTorch's native convolutions; its spread is in the
    report, and each tolerance is 10 times it, at least the floor."""
    p = pipeline(NOISE_MEASURED)
    figures = figures_of((p.out / "report.md").read_text())
    noise = figures["noise"]
    assert noise is not None and noise["strict_matched"] >= 10 and 0 < noise["box"] < 0.05, noise
    assert 0 < noise["keypoint_score"] and noise["mask"] is None, "the keypoint head's spread, no masks"
    assert all(figures["tolerance"][key] == max(EXACT[key], 10 * (noise[key] or 0)) for key in EXACT)
    assert "## detectron2 against itself: the tolerances" in (p.out / "report.md").read_text()


@pytest.mark.parametrize("config", SUITE, ids=zoo.short_name)
def test_tolerances_are_the_floor_but_where_an_undamped_checkpoint_makes_detectron2s_noise_larger(config, pipeline):
    """The stage tests judge each build with the tolerances its verify stated (tests/builds.py Build.tolerance): the
    floor for the suite's damped checkpoints; for UNDAMPED ones, whose runtimes differ beyond it, 10 times the noise
    verify measured, larger than the floor somewhere (else the build would not test the noise-scaled gate)."""
    p = pipeline(config)
    figures = figures_of((p.out / "report.md").read_text())
    noise = figures["noise"]
    if noise is None:  # measured where a check is beyond the floor (or with --measure-noise)
        assert config not in UNDAMPED_ZOO and figures["tolerance"] == stated_tolerance()  # the floor
        return
    assert config in UNDAMPED | set(DRAWN), "a damped zoo build beyond the floor"  # a draw may be noisier
    assert figures["tolerance"] == stated_tolerance(noise_tolerance(noise))
    if config in UNDAMPED_ZOO:
        assert any(figures["tolerance"][key] > EXACT[key] for key in EXACT), (noise, "an undamped build that is not")
    assert not figures["failures"]


@pytest.mark.architecture(C4_AT_ZOO_PROPOSALS)
def test_a_c4_model_at_the_zoos_1000_proposals_converts_with_tflite_running_res5_in_chunks(pipeline):
    p = pipeline(C4_AT_ZOO_PROPOSALS)
    assert (p.info.test.rpn_pre_nms_topk, p.info.test.rpn_post_nms_topk) == (6000, 1000) and p.tflite
    (region,) = roi_chunks.regions(onnx.load(p.out / "model.fixed.onnx", load_external_data=False))
    assert any("/res5/" in node.name for node in region.members) and region.rows < 100, (
        "res5 runs in TFLite a chunk of at most 100 of the 1000 proposals at a time")
    (tflite,) = [row for row in figures_of((p.out / "report.md").read_text())["stages"] if row["stage"] == TFLITE]
    assert tflite["exact"] and not tflite["failures"] and tflite["reference"] >= 10, tflite


def _served(p, figures, report):
    """The report's SavedModel row (on photos as they come, against detectron2's whole inference), checked; None,
    and said so in the report, for a build converted with --no-saved-model."""
    if not p.saved_model:
        assert figures["serving"] == [] and "Not checked: this conversion wrote no saved_model" in report
        return None
    served = figures["serving"][0]
    assert served["reference"] >= 5, served
    if p.roialign == "exact":
        assert served["strict_agreement"] == 1.0 and served["box"] <= 0.05 and served["score"] <= 1e-4, served
        assert (served["mask_equal"] is None) != p.mask and (served["mask_equal"] or 1.0) >= 0.999, served
    else:
        assert served["agreement"] >= 0.7, served
    return served


def _convert(weights, out, *extra, config, **popen):
    args = ["-m", "d2tf.convert", "--config", config, "--weights", weights, "--out", out, "--trace-size", "256x320",
            "--verify-sizes", "256x320", *extra]
    if popen:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
        return subprocess.Popen([sys.executable, *map(str, args)], text=True, env=env, **popen)
    return run_python(*args)


@pytest.mark.architecture(EXAMPLE)
def test_export_and_graphfix_are_deterministic(pipeline, tmp_path):
    """A second export of the same config and weights, and graphfix on it, give byte-identical files (tf_import's
    npz and flags: test_tf_import.test_folded_batchnorm_pb_matches_and_npz_is_unchanged)."""
    from graphfix.cli import fix

    p = pipeline(EXAMPLE)
    result = run_python("-m", "export", "--config", p.yaml, "--weights", p.weights, "--out", tmp_path,
                        "--trace-size", "256x320")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model.onnx").read_bytes() == (p.out / "model.onnx").read_bytes()
    fix(str(tmp_path / "model.onnx"), str(tmp_path / "model.fixed.onnx"), roialign="exact")
    assert (tmp_path / "model.fixed.onnx").read_bytes() == (p.out / "model.fixed.onnx").read_bytes()


def _wait_for(condition, proc, log, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.2)


def _staging(out):
    return list((out / HIDDEN).glob("staging-*"))


def _children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def _gone(pid, timeout=30):
    """Whether process pid has ended within timeout (a zombie has: a container's init may never reap it)."""
    def running():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + timeout
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    return not running()


@pytest.mark.architecture(EXAMPLE)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_interrupted_run_leaves_no_partial_file(sig, checkpoint_path, tmp_path):
    """Killed while the export stage runs: OUT keeps what it held before, nothing else, and the stage's process
    goes too."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_bytes(b"the user's file")
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        yaml, weights = checkpoint_path(EXAMPLE)
        proc = _convert(weights, out, config=yaml, start_new_session=True, stderr=stderr)
        _wait_for(lambda: _staging(out) and _children(proc.pid), proc, log)
    stage = _children(proc.pid)[0]
    os.killpg(proc.pid, sig) if sig == signal.SIGKILL else proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert _gone(stage), "the export stage outlived the conversion"
    assert sorted(set(os.listdir(out)) - {HIDDEN}) == ["notes.txt"]
    assert (out / "notes.txt").read_bytes() == b"the user's file"
    if sig == signal.SIGKILL:  # no chance to clean up: the next run removes the abandoned staging directory
        assert _staging(out)
        remove_abandoned(str(out))
    else:
        assert log.read_text().strip().splitlines()[-1] == "error: interrupted"
    assert not _staging(out)


@pytest.mark.architecture(EXAMPLE)
@pytest.mark.parametrize("case", ["unknown zoo name", "missing weights", "unsupported config", "corrupt pkl",
                                  "missing coco dir"])
def test_bad_inputs_give_one_line_errors(case, checkpoint_path, tmp_path):
    config, weights = checkpoint_path(EXAMPLE)
    expected = {
        "unknown zoo name": "error: unknown config",
        "missing weights": "error: weights file not found",
        "unsupported config": "error: export failed: unsupported config",
        "corrupt pkl": "error: export failed:",
        "missing coco dir": "error: COCO-style directory not found",
    }[case]
    extra = []
    if case == "unknown zoo name":
        config = "COCO-Detection/faster_rcnn_R_18_FPN_9x.yaml"
    elif case == "missing weights":
        weights = tmp_path / "model_final_missing.pkl"
    elif case == "missing coco dir":
        extra = ["--evaluate", tmp_path / "no_such_coco"]
    elif case == "unsupported config":
        config = yaml_with(config, "MODEL:\n  ROI_BOX_HEAD:\n    POOLER_TYPE: ROIPool\n", tmp_path)
    else:
        weights = tmp_path / "model_final_corrupt.pkl"
        weights.write_bytes(b"\x80\x04not really a pickle")
    result = _convert(weights, tmp_path / "out", *extra, config=config)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(expected), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_verify_refuses_a_directory_that_is_not_a_conversion(tmp_path):
    result = run_python("-m", "verify", "--out", tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}/model.fixed.onnx not found: verify reads a directory written by `make convert`")
