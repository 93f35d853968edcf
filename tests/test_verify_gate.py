"""verify gates the conversion: a check that must be exact fails it outside the tolerance, a verification whose
images gave detectron2 nothing to detect says it checked nothing, and the weights must be those export converted.
All on hand-made outputs and a tiny stand-in OUT: no model runs."""

import contextlib
import dataclasses
import hashlib
import os

import numpy as np
import onnx
import pytest

import core
from core import D2TFError
from core.contract import TFLITE
from core.metadata import record_passes, write_info
from tests.model_infos import model_info
from tests.processes import run_python
from tests.test_verify_images import SAMPLE_PHOTO
from verify import agreement, report, run, serving
from verify.agreement import inexact, measure
from verify.report import figures_of

SHAPES = {"synthetic1_256x320": [256, 320], "synthetic2_300x452": [300, 452]}
INFO = model_info(resize={"min_size_test": 64, "max_size_test": 100},
                  source={"config": "/w/config.yaml", "weights": "/w/model.pkl", "weights_sha256": "ab" * 32})
C4 = dataclasses.replace(INFO.architecture, name="R50-C4", backbone="C4")
RETINANET = dataclasses.replace(INFO.architecture, name="R50-FPN RetinaNet", meta="RetinaNet", mask=False)
TOLERANCE = ("every detection matched at IoU >= 0.99 with its label, boxes within 0.05 px, scores within 0.0001, "
             "masks within 0.0001, keypoints within 0.05 px (but up to 1% moved by argmax ties) and their scores "
             "within 0.0001 (instances whose box rounds to another heatmap grid aside), semantic logits within 0.0001 "
             "or their argmax equal on >= 99.99% of pixels")


def _detections(n=3):
    boxes = np.array([[10 + 60 * i, 10, 50 + 60 * i, 70] for i in range(n)], np.float32)
    return {"boxes": boxes, "scores": np.linspace(0.9, 0.5, n, dtype=np.float32), "classes": np.arange(n) % 2,
            "masks": np.full((n, 4, 4), 0.5, np.float32)}


def _outputs(mode, n=3, tensorpack=True, images=tuple(SHAPES), photos=tuple(SHAPES)):
    """Every runtime verify compares on the `images`, and the SavedModel's on the `photos`, all agreeing exactly;
    tests then change some."""
    other = "exact" if mode == "tensorpack" else "tensorpack"
    runtimes = ["detectron2", "model.onnx", "model.fixed.onnx", "model.pb", f"other:{other}"]
    runtimes += ["tensorpack"] if tensorpack else []
    return {r: {key: _detections(n) for key in (photos if r in serving.RUNTIMES else images)}
            for r in runtimes + list(serving.RUNTIMES)}


def _shift(outputs, runtimes, px, keys=tuple(SHAPES)):
    """Moves the runtimes' boxes by `px`: 1 px is what tensorpack's RoIAlign sampling does, not float round-off."""
    for runtime in runtimes:
        for key in keys:
            outputs[runtime][key]["boxes"] += np.float32(px)


def _run_all(n=3, change=lambda outputs: None):
    """A stand-in for verify's _run_all (which verify calls by position): _outputs on the images and photos verify
    hands it (photos among them when given), changed by `change`."""
    def run_all(out_dir, info, fixed, other, images, photos_npz, work, *rest):
        np.savez(os.path.join(work, "images.npz"), **images)  # as verify's leaves them
        with np.load(photos_npz) as photos:
            outputs = _outputs("exact", n, False, list(images), photos.files)
        change(outputs)
        return outputs

    return run_all


def _served(outputs, mode, photos=None, saved_model=None):
    """verify's SavedModel row: the SavedModel on photos against detectron2's whole inference (by default both
    detectron2's outputs on the synthetic images)."""
    photos = photos or outputs["detectron2"]
    return serving.row(dict(zip(serving.RUNTIMES, (photos, saved_model or photos))), SHAPES, exact=mode == "exact")


def _figures(outputs, mode, backbone="FPN", served=None, pooled=True, threshold=None):
    return run._figures(outputs, mode, "exact" if mode == "tensorpack" else "tensorpack", SHAPES, backbone,
                        served or _served(outputs, mode), pooled, threshold=threshold)


def _gates(figures):
    return [(row.get("stage", row.get("model", "tensorpack")), row["against"] if "against" in row else "detectron2",
             row["exact"]) for section in ("stages", "agreement", "tensorpack") for row in figures[section]]


def test_exact_mode_gates_every_stage_and_the_exact_graph_against_detectron2():
    outputs = _outputs("exact")
    _shift(outputs, ["other:tensorpack", "tensorpack"], 1.0)
    figures = _figures(outputs, "exact")
    assert figures["failures"] == []
    assert _gates(figures) == [
        ("model.onnx", "detectron2", True), ("model.fixed.onnx", "model.onnx", True),
        ("model.pb", "model.fixed.onnx", True), ("model.pb", "detectron2", True),
        ("other:tensorpack", "detectron2", False), ("tensorpack", "detectron2", False),
        ("tensorpack", "other:tensorpack", True)]
    assert figures["tolerance"] == {"iou": 0.99, "box": 0.05, "score": 1e-4, "mask": 1e-4, "sem_seg": 1e-4,
                                    "keypoint": 0.05, "keypoint_score": 1e-4, "objectness": 1e-4}


def test_a_stage_outside_its_tolerance_fails_with_its_figure():
    outputs = _outputs("exact")
    _shift(outputs, ["model.pb"], 0.07)  # still matched at IoU >= 0.99
    outputs["model.pb"]["synthetic2_300x452"]["masks"][1] += 2e-4
    assert _figures(outputs, "exact")["failures"] == [
        "model.pb against model.fixed.onnx: max box diff 0.07 px > 0.05 px; max mask diff 0.0002 > 0.0001",
        "model.pb against detectron2: max box diff 0.07 px > 0.05 px; max mask diff 0.0002 > 0.0001"]


def test_a_lost_detection_fails_the_stage():
    outputs = _outputs("exact")
    outputs["model.onnx"]["synthetic1_256x320"] = {name: value[:2] for name, value in _detections().items()}
    assert _figures(outputs, "exact")["failures"][0] == (
        "model.onnx against detectron2: 5 of 6 detections matched at IoU >= 0.99 (5 vs 6), not all")


def test_tensorpack_mode_gates_the_switched_exact_copy_not_the_fixed_graph():
    outputs = _outputs("tensorpack")
    _shift(outputs, ["model.fixed.onnx", "model.pb", "tensorpack"], 1.0)
    figures = _figures(outputs, "tensorpack")
    assert figures["failures"] == []
    assert _gates(figures) == [
        ("model.onnx", "detectron2", True), ("model.fixed.onnx", "model.onnx", False),
        ("other:exact", "model.onnx", True), ("model.pb", "model.fixed.onnx", True),
        ("model.pb", "detectron2", False), ("other:exact", "detectron2", True),
        ("tensorpack", "detectron2", False), ("tensorpack", "model.pb", True)]
    outputs["other:exact"]["synthetic1_256x320"]["scores"][0] += 3e-4
    assert _figures(outputs, "tensorpack")["failures"] == [
        "model.onnx fixed with --roialign exact against model.onnx: max score diff 0.0003 > 0.0001",
        "model.onnx fixed with --roialign exact against detectron2: max score diff 0.0003 > 0.0001"]


def test_without_roialign_tensorpack_mode_is_gated_as_exact():
    """RetinaNet has no RoIAlign: its graph is detectron2's whichever mode it was converted in."""
    outputs = _outputs("tensorpack")
    figures = _figures(outputs, "tensorpack", pooled=False)
    assert figures["failures"] == []
    assert [gate for gate in _gates(figures) if gate[0] != "tensorpack"] == [
        ("model.onnx", "detectron2", True), ("model.fixed.onnx", "model.onnx", True),
        ("other:exact", "model.onnx", True), ("model.pb", "model.fixed.onnx", True),
        ("model.pb", "detectron2", True), ("other:exact", "detectron2", True)]
    _shift(outputs, ["model.fixed.onnx", "model.pb"], 0.07)
    assert _figures(outputs, "tensorpack", pooled=False)["failures"][:2] == [
        "model.fixed.onnx against model.onnx: max box diff 0.07 px > 0.05 px",
        "model.pb against detectron2: max box diff 0.07 px > 0.05 px"]


def test_c4_tensorpack_model_is_gated_on_the_images_whose_sides_are_multiples_of_16():
    outputs = _outputs("exact")
    _shift(outputs, ["other:tensorpack", "tensorpack"], 1.0)
    _shift(outputs, ["tensorpack"], 0.5, keys=["synthetic2_300x452"])  # 300x452: tensorpack's C4 maps shrink
    graph = _figures(outputs, "exact", backbone="C4")["tensorpack"][1]
    assert (graph["exact"], graph["images"], graph["failures"]) == (True, 1, [])
    assert _figures(outputs, "exact", backbone="FPN")["failures"] == [
        "tensorpack's model against model.onnx fixed with --roialign tensorpack: 3 of 6 detections matched at "
        "IoU >= 0.99 (6 vs 6), not all; max box diff 0.5 px > 0.05 px"]
    text = report.render(dataclasses.replace(INFO, architecture=C4), "exact",
                         _figures(outputs, "exact", backbone="C4"))
    assert "compared on the 1 of 2 images whose sides are multiples of 16" in text


def test_the_saved_model_gate_compares_detections_at_image_scale_and_masks_by_equal_pixels():
    outputs = _outputs("exact")
    photos = {key: dict(image, masks=np.ones((3, 40, 50), np.uint8)) for key, image in outputs["detectron2"].items()}

    def served(mode="exact", dx=0.0, flipped=0):
        saved = {key: dict(image, boxes=image["boxes"] + np.float32(dx), masks=image["masks"].copy())
                 for key, image in photos.items()}
        saved["synthetic1_256x320"]["masks"][1].flat[:flipped] = 0
        return _figures(_outputs(mode), mode, served=_served(outputs, mode, photos, saved))

    assert served(dx=0.04, flipped=2)["failures"] == []  # 1998 of 2000 pixels equal: 99.9%
    assert served(dx=0.07, flipped=3)["failures"] == [
        "saved_model against detectron2: max box diff 0.07 px > 0.05 px; a matched mask has 99.8500% of its pixels "
        "equal, < 99.9%"]
    assert served("tensorpack", dx=1.0, flipped=100)["serving"][0]["failures"] == []  # measured only
    text = report.render(INFO, "exact", served(flipped=3))
    assert "| 6 vs 6 | 100.0% | 100.0% | 0.0000 | 0.00e+00 | 99.8500% | **exact: FAILED** |" in text


def test_report_lists_every_image_with_its_file_size_and_detections():
    """A photo is listed by its file, the size it was read at and the size each runtime ran it at; every image with
    detectron2's detections on it, and how many of those score above the model's threshold (the stages ran with it
    lowered; the SavedModel at it). A C4 model's tensorpack check takes a photo whose resized sides are multiples of
    16 like any image."""
    shapes = {**SHAPES, "image1_holiday": [256, 336]}
    photos = {"photo1_153x217": [153, 217], "image1_holiday": [3000, 4000]}
    outputs = _outputs("exact", images=shapes, photos=photos)
    for runtime in outputs:
        outputs[runtime]["synthetic2_300x452"] = _detections(2)
    _shift(outputs, ["other:tensorpack", "tensorpack"], 1.0)
    served = serving.row({runtime: outputs[runtime] for runtime in serving.RUNTIMES}, photos, exact=True)
    files = {"image1_holiday": {"path": "/photos/holiday.JPG", "size": [3000, 4000]}}
    figures = run._figures(outputs, "exact", "tensorpack", shapes, "C4", served, files=files, threshold=0.6)
    assert (figures["failures"], figures["tensorpack"][1]["images"]) == ([], 2)
    lines = report.render(dataclasses.replace(INFO, architecture=C4), "exact", figures).splitlines()
    assert "- images: 2 synthetic images (synthetic1_256x320, synthetic2_300x452); 1 photo (holiday.JPG), " \
        f"d2tf {core.__version__}" in lines
    table = lines.index("| image | from | run by | size (HxW) | detections |")
    assert lines[table + 2:table + 8] == [
        "| synthetic1_256x320 | synthetic | every stage | 256x320 | 3 (2 above the threshold 0.6) |",  # 0.9 0.7 0.5
        "| synthetic2_300x452 | synthetic | every stage | 300x452 | 2 (1 above the threshold 0.6) |",  # 0.9 0.5
        "| image1_holiday | `/photos/holiday.JPG` (3000x4000 as read) | every stage | 256x336 | 3 (2 above the "
        "threshold 0.6) |",
        "| photo1_153x217 | synthetic | the SavedModel, as it comes | 153x217 | 3 |",
        "| image1_holiday | `/photos/holiday.JPG` (3000x4000 as read) | the SavedModel, as it comes | 3000x4000 | 3 |",
        ""]
    assert "![detectron2 (left) and model.pb (right) on image1_holiday](verify.png)" in lines


def test_report_says_failed_at_its_top_and_lists_what_failed():
    outputs = _outputs("exact")
    _shift(outputs, ["model.pb"], 0.07)
    text = report.render(INFO, "exact", _figures(outputs, "exact"))
    assert text.splitlines()[:5] == [
        "# d2tf verification FAILED: R50-FPN Mask R-CNN", "",
        f"**FAILED** (checks marked *exact* below require {TOLERANCE}):", "",
        "- model.pb against model.fixed.onnx: max box diff 0.07 px > 0.05 px"]
    assert "| model.pb | model.fixed.onnx | 6 vs 6 | 100.0% | 100.0% | 0.0700 | 0.00e+00 | 0.00e+00 | " \
           "**exact: FAILED** |" in text
    assert figures_of(text)["stages"][2]["failures"] == [
        "model.pb against model.fixed.onnx: max box diff 0.07 px > 0.05 px"]
    passed = report.render(INFO, "exact", _figures(_outputs("exact"), "exact"))
    assert passed.splitlines()[:3] == ["# d2tf verification passed: R50-FPN Mask R-CNN", "",
                                       f"Every check marked *exact* below passed ({TOLERANCE})."]
    assert "- RoIAlign in model.fixed.onnx and model.pb: **exact**" in passed.splitlines()
    retinanet = dataclasses.replace(INFO, architecture=RETINANET, pooler={})
    assert "- RoIAlign: none in this R50-FPN RetinaNet, so both --roialign modes are the same graph" in \
        report.render(retinanet, "exact", _figures(_outputs("exact"), "exact")).splitlines()


def test_no_detections_report_says_it_checked_nothing_and_nothing_reads_as_perfect():
    figures = _figures(_outputs("exact", n=0), "exact")
    assert figures["failures"][:2] == [
        "detectron2 detected nothing on any of the 2 synthetic images, even with its score threshold lowered",
        "model.onnx against detectron2: no detections on either side, so it checked nothing"]
    text = report.render(INFO, "exact", figures).split("<!--")[0]
    assert text.startswith("# d2tf verification FAILED")
    assert "| model.onnx | detectron2 | 0 vs 0 | no detections | no detections | n/a | n/a | n/a | " \
           "**exact: FAILED** |" in text
    assert "0.0%" not in text and "0.0000" not in text and "0.00e+00" not in text


# A stand-in OUT: a one-node model.fixed.onnx carrying the model info, as verify reads it.
def _fake_out(tmp_path, weights_sha=None):
    weights = tmp_path / "model.pkl"
    weights.write_bytes(b"weights")
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    model = onnx.helper.make_model(graph)
    sha = weights_sha or hashlib.sha256(b"weights").hexdigest()
    write_info(model, dataclasses.replace(INFO, source=dataclasses.replace(INFO.source, weights=str(weights),
                                                                           weights_sha256=sha)))
    record_passes(model, [("roialign", "exact")])
    out = tmp_path / "out"
    (out / "saved_model").mkdir(parents=True)
    (out / "model.fixed.onnx").write_bytes(model.SerializeToString())
    return out, weights


def test_make_verify_refuses_weights_that_changed_since_export(tmp_path):
    out, weights = _fake_out(tmp_path, weights_sha="0123456789abcdef" * 4)
    result = run_python("-m", "verify", "--out", out)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {weights} changed since export (sha256 {hashlib.sha256(b'weights').hexdigest()[:16]}..., export "
        "recorded 0123456789abcdef...): restore it, or convert again")


def test_make_verify_refuses_a_photo_it_cannot_read(tmp_path):
    out, _ = _fake_out(tmp_path)
    result = run_python("-m", "verify", "--out", out, "--verify-images", tmp_path / "model.pkl")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'model.pkl'}: not an image (Pillow cannot " \
        "read it)"


def test_verify_says_when_the_weights_are_gone(tmp_path):
    out, weights = _fake_out(tmp_path)
    weights.unlink()
    with pytest.raises(D2TFError) as e:
        run.verify(out)
    assert str(e.value) == (f"the weights export converted are gone: {weights} not found (verify runs detectron2 "
                            "on them)")


def _native(calls, box=0.0):
    """A stand-in for detectron2 with PyTorch's native convolutions: the images' detections (tests' _detections),
    boxes moved by `box` px; each call recorded in `calls`."""
    def detectron2_on_images(info, images_npz, out_npz, photos=None, lower_from=None, native=False):
        calls.append((lower_from, native))
        with np.load(images_npz) as images:
            outputs = {key: _detections() for key in images.files}
        for image in outputs.values():
            image["boxes"] += np.float32(box)
        return outputs

    return detectron2_on_images


@pytest.mark.parametrize("shift, measure_noise, measured", [
    (0.0, False, False), (0.0, True, True), (0.07, False, True),
], ids=["within-the-floor", "asked", "outside-the-floor"])
def test_detectron2s_noise_is_measured_where_a_check_is_outside_the_floor_or_when_asked(
        shift, measure_noise, measured, tmp_path, monkeypatch):
    out, _ = _fake_out(tmp_path)
    calls = []
    monkeypatch.setattr(run, "_run_all", _run_all(change=lambda outputs: _shift(outputs, ["model.pb"], shift)))
    monkeypatch.setattr(run, "detectron2_on_images", _native(calls, box=0.01))
    with contextlib.suppress(run.VerificationFailed):
        run.verify(out, sizes=((256, 320), (300, 452)), measure_noise=measure_noise)
    assert calls == ([(INFO.test.score_thresh, True)] if measured else [])
    figures = figures_of((out / "report.md").read_text())
    assert (figures["noise"] is not None) == measured
    if measured:  # 10 x 0.01 px: the 0.07 px stage passes
        assert figures["tolerance"]["box"] == pytest.approx(0.1, rel=1e-3) and figures["failures"] == []


def test_failed_verification_writes_its_report_then_exits_3(tmp_path, monkeypatch):
    out, _ = _fake_out(tmp_path)
    monkeypatch.setattr(run, "_run_all", _run_all(change=lambda outputs: _shift(outputs, ["model.pb"], 0.07)))
    monkeypatch.setattr(run, "detectron2_on_images", _native([]))  # detectron2 as far from itself as nothing
    with pytest.raises(run.VerificationFailed) as e:
        run.verify(out, sizes=((256, 320), (300, 452)))
    assert e.value.exit_status == 3
    assert str(e.value) == ("verification FAILED: model.pb against model.fixed.onnx: max box diff 0.07 px > 0.05 px; "
                            "1 more in report.md")
    assert (out / "report.md").read_text().startswith("# d2tf verification FAILED")
    assert (out / "verify.png").read_bytes().startswith(b"\x89PNG")


def test_no_image_with_detections_fails_as_checking_nothing(tmp_path, monkeypatch):
    out, _ = _fake_out(tmp_path)
    monkeypatch.setattr(run, "_run_all", _run_all(n=0))
    with pytest.raises(run.VerificationFailed) as e:
        run.verify(out, sizes=((256, 320), (300, 452)), photo_paths=[SAMPLE_PHOTO])
    # every stage's row; the SavedModel's, nothing above the threshold on either side, agrees
    assert str(e.value) == ("verification FAILED: detectron2 detected nothing on any of the 2 synthetic images nor on "
                            "grace_hopper.jpg, even with its score threshold lowered; 4 more in report.md")


def test_semantic_logits_pass_within_their_tolerance_or_with_the_argmax_equal():
    """A semantic FPN's logits are exact within 1e-4, or beyond it with the argmax equal on >= 99.99% of pixels
    (near-ties may swap); the row has no detections to check."""
    logits = np.random.default_rng(0).standard_normal((3, 100, 100)).astype(np.float32)

    def problems(candidate):
        return inexact(measure({"image": {"sem_seg": logits}}, {"image": {"sem_seg": candidate}}))

    assert problems(logits + 5e-5) == []
    assert problems(logits + 2e-4) == [], "every logit moved beyond 1e-4, every argmax the same"
    flipped = logits + 2e-4
    flipped[:, 0, 0] = -flipped[:, 0, 0]  # the best class of one pixel in 10000 becomes the worst
    assert problems(flipped) == []
    flipped[:, 1, 0] = -flipped[:, 1, 0]  # and of a second
    (problem,) = problems(flipped)
    assert problem.startswith("max sem_seg logit diff ") and problem.endswith(
        " > 0.0001 and the argmax equal on 99.9800% of pixels < 99.99%"), problem


def test_proposals_compare_as_detections_of_one_class():
    proposals = np.array([[0, 0, 10, 10], [5, 5, 30, 40]], np.float32)
    reference = {"image": {"proposals": proposals, "objectness": np.float32([3.0, 1.0])}}
    assert inexact(measure(reference, reference)) == []
    moved = {"image": {"proposals": proposals + np.float32([0, 0, 0.1, 0]), "objectness": np.float32([3.0, 1.0])}}
    assert inexact(measure(reference, moved)) == ["max box diff 0.1 px > 0.05 px"]


def test_keypoints_of_matched_instances_are_compared_on_the_same_heatmap_grid():
    """Keypoints within 0.05 px and their scores within 1e-4; an instance whose box side crosses an integer between
    the runtimes is resized to another grid by detectron2 (ceil of its sides), so it is counted, not compared."""
    boxes = np.array([[10, 10, 50.5, 80.25], [100, 20, 140.99998, 90]], np.float32)
    keypoints = np.random.default_rng(0).uniform(10, 80, (2, 17, 3)).astype(np.float32)
    reference = {"image": {"boxes": boxes, "scores": np.float32([0.9, 0.8]), "classes": np.int64([0, 0]),
                           "keypoints": keypoints}}

    def row(moved_boxes, moved_keypoints):
        candidate = {"image": dict(reference["image"], boxes=moved_boxes, keypoints=moved_keypoints)}
        return measure(reference, candidate)

    assert inexact(row(boxes, keypoints + np.float32([0.01, 0.01, 5e-5]))) == []
    assert inexact(row(boxes, keypoints + np.float32([0, 0, 2e-4]))) == ["max keypoint_score diff 0.0002 > 0.0001"]
    tied = keypoints.copy()
    tied[0, 3, 1] += 2.96  # one keypoint of 34 on a nearly tied pixel three rows down: 2.9% > 1%
    figures = row(boxes, tied)
    assert (figures["keypoints_moved"], figures["keypoints_compared"], figures["keypoint"]) == (1, 34, 0)
    assert inexact(figures) == ["1 of 34 keypoints moved more than 0.05 px, above the 1% that argmax ties may move"]
    assert inexact(measure({"a": reference["image"], **{f"b{i}": reference["image"] for i in range(3)}},
                           {"a": dict(reference["image"], keypoints=tied), **{f"b{i}": reference["image"]
                                                                            for i in range(3)}})) == [], "1 of 136"
    across = boxes.copy()
    across[0, 2] += 1e-3  # the first box's width 40.5 -> 40.501: ceil 41 either way
    assert row(across, keypoints)["keypoints_regridded"] == 0
    across[1, 2] = 141.00003  # the second's 40.99998 -> 41.00003: ceil 41 -> 42, another grid
    moved = keypoints.copy()
    moved[1] += 3
    figures = row(across, moved)
    assert figures["keypoints_regridded"] == 1 and figures["keypoint"] == 0 and inexact(figures) == []


def test_the_tolerance_is_ten_times_detectron2s_own_spread_at_least_the_floor():
    noise = {"box": 0.01, "score": 3e-5, "mask": None, "sem_seg": None, "keypoint": 0.002, "keypoint_score": 0.004,
             "objectness": 2e-3}
    assert agreement.noise_tolerance(noise) == pytest.approx({"box": 0.1, "score": 3e-4, "mask": 1e-4, "sem_seg": 1e-4,
                                                              "keypoint": 0.05, "keypoint_score": 0.04,
                                                              "objectness": 0.02})


def _noisy(box, score):
    """measure()'s row of detectron2 against a second evaluation of itself that moved boxes by `box` px and scores
    by `score`."""
    outputs = _outputs("exact")
    again = {key: {name: value.copy() for name, value in image.items()} for key, image in outputs["detectron2"].items()}
    for image in again.values():
        image["boxes"] += np.float32(box)
        image["scores"] += np.float32(score)
    return agreement.measure(outputs["detectron2"], again)


def test_a_stage_beyond_the_floor_passes_within_ten_times_the_noise_and_a_translation_error_still_fails():
    """detectron2 moves its own boxes by 0.01 px and scores by 5e-5 between two evaluations: tolerances 0.1 px and
    5e-4. model.pb 0.08 px and 3e-4 from the fixed graph passes (its 40x60 boxes still overlap at IoU 0.993); a
    translation error (0.5 px: a RoIAlign offset) still fails, and so does the same stage without the noise
    measured."""
    noise = _noisy(0.01, 5e-5)
    assert (noise["box"], noise["score"]) == (pytest.approx(0.01, rel=1e-3), pytest.approx(5e-5, rel=1e-2))

    def figures(px, score, noise):
        outputs = _outputs("exact")
        _shift(outputs, ["model.pb"], px)
        for key in SHAPES:
            outputs["model.pb"][key]["scores"] += np.float32(score)
        return run._figures(outputs, "exact", "tensorpack", SHAPES, "FPN", _served(outputs, "exact"), noise=noise)

    within = figures(0.08, 3e-4, noise)
    assert within["failures"] == [] and within["tolerance"]["box"] == pytest.approx(0.1, rel=1e-3)
    assert "; max box diff 0.5 px > 0.1 px" in figures(0.5, 0.0, noise)["failures"][0]
    assert figures(0.08, 3e-4, None)["failures"][0] == (
        "model.pb against model.fixed.onnx: max box diff 0.08 px > 0.05 px; max score diff 0.0003 > 0.0001")


def test_report_states_detectron2s_spread_and_the_tolerances_it_sets():
    outputs = _outputs("exact")
    figures = run._figures(outputs, "exact", "tensorpack", SHAPES, "FPN", _served(outputs, "exact"),
                           noise=_noisy(0.02, 5e-5))
    lines = report.render(INFO, "exact", figures).splitlines()
    table = lines.index("| quantity | detectron2 against itself | floor | tolerance |")
    assert lines[table + 2:table + 6] == ["| boxes (px) | 0.02 | 0.05 | 0.2 |", "| scores | 5e-05 | 0.0001 | 0.0005 |",
                                          "| masks | 0 | 0.0001 | 0.0001 |", ""]
    assert lines[2].startswith("Every check marked *exact* below passed (every detection matched at IoU >= 0.99 "
                               "with its label, boxes within 0.2 px, scores within 0.0005, masks within 0.0001,")


def test_mask_iou_is_the_mean_over_matched_detections_of_masks_above_one_half():
    """Two matched detections: masks of 4 and 2 pixels above 0.5 sharing 2 (IoU 0.5), and equal ones (IoU 1): 0.75.
    An unmatched detection (another class) counts nothing; without masks there is nothing to measure."""
    boxes = np.float32([[0, 0, 10, 10], [20, 0, 30, 10]])
    masks = np.zeros((2, 4, 4), np.float32)
    masks[0, :2, :2] = 0.9
    masks[1, 0, 0] = 0.7
    other = masks.copy()
    other[0, 1, :2] = 0.5  # not above 0.5: two of the four pixels
    reference = {"a": {"boxes": boxes, "scores": np.float32([0.9, 0.8]), "classes": np.int64([1, 1]), "masks": masks}}
    candidate = {"a": {"boxes": boxes, "scores": np.float32([0.9, 0.8]), "classes": np.int64([1, 2]),
                       "masks": other}}
    assert agreement.mask_iou(reference, candidate) == 0.5
    candidate["a"]["classes"] = np.int64([1, 1])
    assert agreement.mask_iou(reference, candidate) == 0.75
    assert agreement.mask_iou({"a": {k: v for k, v in reference["a"].items() if k != "masks"}}, candidate) is None


def test_a_smaller_tflite_model_is_measured_against_detectron2_and_gates_nothing(tmp_path):
    """model.float16.tflite with one of six boxes 10 px off (IoU 30/50 = 0.6: matched at 0.5, not at 0.9) and one
    mask changed: its row in the report, beside its size and model.tflite's; the verification still passes."""
    outputs = _outputs("exact")
    smaller = {key: {name: value.copy() for name, value in image.items()} for key, image in
               outputs["detectron2"].items()}
    smaller["synthetic1_256x320"]["boxes"][0] += np.float32([10, 0, 10, 0])
    smaller["synthetic2_300x452"]["masks"][1, :2] = 0.9  # 8 pixels above 0.5 against none: IoU 0
    outputs["model.float16.tflite"] = smaller
    (tmp_path / "model.tflite").write_bytes(bytes(2**21))
    (tmp_path / "model.float16.tflite").write_bytes(bytes(2**20))
    outputs[TFLITE] = outputs["detectron2"]
    float32, row = run._smaller_tflite(outputs, tmp_path)
    assert (float32["model"], float32["variant"], float32["matched90"], float32["mask_iou"]) == (TFLITE, "float32",
                                                                                                  1.0, 1.0)
    assert row == {"model": "model.float16.tflite", "variant": "float16", "mib": 1.0, "float32_mib": 2.0,
                   "matched50": 1.0, "matched90": 5 / 6, "ap": row["ap"], "ap50": 1.0, "mask_iou": 5 / 6,
                   "score": 0.0}
    assert 0.5 < row["ap"] < 1.0  # one box off at IoU 0.6: missed at the stricter thresholds of COCO's 0.5:0.95
    figures = _figures(outputs, "exact")
    figures["smaller_tflite"] = [float32, row]
    text = report.render(INFO, "exact", figures)
    assert "| model.float16.tflite | 1 (model.tflite 2) | 100.0% | 83.3% | " in text and not figures["failures"]
    assert run._smaller_tflite({**_outputs("exact"), TFLITE: smaller}, tmp_path) == []  # no smaller one written


def test_only_the_smaller_tflite_models_written_with_model_tflite_are_run(tmp_path):
    """tf_import writes a smaller model after model.tflite, and leaves an earlier run's (or a user's) as it was:
    verify runs those not older than model.tflite, and none without it."""
    assert run.tflite_models(tmp_path) == []
    for name, age in (("model.int8.tflite", 0), ("model.tflite", 10), ("model.float16.tflite", 20)):
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (1000 + age, 1000 + age))
    assert run.tflite_models(tmp_path) == ["model.tflite", "model.float16.tflite"]
    (tmp_path / "model.tflite").unlink()
    assert run.tflite_models(tmp_path) == []
