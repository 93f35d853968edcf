"""verify/memory.py: the runtimes' estimated peaks, from hand-computed parts, and the budget that runs them side by
side only as far as those fit."""

import threading
import time

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tests.model_infos import model_info
from verify import memory, run
from verify.memory import GIB


def test_an_estimate_adds_the_framework_the_weights_the_pixels_and_the_pooled_boxes():
    # the pb: 1 GiB + 3 copies of 0.5 GiB of weights + 4096 bytes x 1e6 pixels + 8 copies of 0.25 GiB pooled
    assert memory.estimate("model.pb", GIB // 2, 10**6, GIB // 4) == GIB + 3 * GIB // 2 + 4096 * 10**6 + 2 * GIB
    # TFLite runs the boxes in chunks: no pooled part
    assert memory.estimate("model.tflite", 0, 0, 100 * GIB) == 1.5 * GIB


def pooled_model():
    """Two RoiAligns on a [1, 16, 20, 20] map: 16x7x7 and 16x14x14 per box."""
    rois = [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 16, 20, 20]),
            helper.make_tensor_value_info("rois", onnx.TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("batch", onnx.TensorProto.INT64, ["N"])]
    nodes = [helper.make_node("RoiAlign", ["x", "rois", "batch"], [f"p{size}"], output_height=size,
                              output_width=size) for size in (7, 14)]
    graph = helper.make_graph(nodes, "g", rois, [helper.make_value_info(f"p{s}", onnx.TypeProto()) for s in (7, 14)],
                              [numpy_helper.from_array(np.zeros((3, 5), np.float32), "w"),
                               numpy_helper.from_array(np.zeros(7, np.int64), "v")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])


def test_pooled_bytes_are_the_largest_roialigns_output_for_every_proposal():
    assert memory.pooled_bytes(pooled_model(), 1000) == 16 * 14 * 14 * 4 * 1000
    assert memory.weight_bytes(pooled_model()) == 3 * 5 * 4 + 7 * 8


def test_a_runtime_waits_until_its_estimate_fits_beside_those_running():
    budget, events = memory.Budget(10), []
    first_in, release = threading.Event(), threading.Event()

    def first():
        with budget.hold(6):
            first_in.set()
            release.wait()
            events.append("first done")

    def second():
        with budget.hold(5, waiting=lambda: events.append("second waits")):
            events.append("second runs")

    one = threading.Thread(target=first, daemon=True)  # daemons, joined with a timeout: a budget that never lets
    one.start()  # the second run must fail the test, not hang the suite
    first_in.wait()
    two = threading.Thread(target=second, daemon=True)
    two.start()
    time.sleep(0.2)
    assert events == ["second waits"] and budget.held == 6  # 6 + 5 > 10
    release.set()
    one.join(5), two.join(5)
    assert events == ["second waits", "first done", "second runs"] and budget.held == 0


def test_runtimes_that_fit_together_run_together_and_one_too_large_runs_alone():
    budget, held = memory.Budget(10), []

    def run():
        with budget.hold(4, waiting=lambda: held.append("4 of 10 waited")), \
                budget.hold(6, waiting=lambda: held.append("4 + 6 of 10 waited")):
            held.append(budget.held)
        with budget.hold(25, waiting=lambda: held.append("25 alone waited")):
            held.append(budget.held)

    thread = threading.Thread(target=run, daemon=True)  # a budget that never lets it run must not hang the suite
    thread.start()
    thread.join(timeout=5)
    assert held == [10, 25] and budget.held == 0


def test_a_runtime_still_waiting_when_verify_is_interrupted_never_starts():
    from verify.run import _within

    budget, stopping, ran = memory.Budget(10), threading.Event(), []
    assert _within(budget, 4, stopping, "model.pb", lambda x: ran.append(x) or "outputs", 1) == "outputs"
    stopping.set()
    assert _within(budget, 4, stopping, "model.tflite", lambda x: ran.append(x), 2) is None
    assert ran == [1] and budget.held == 0


def test_photos_run_at_their_test_resize_and_a_mask_model_pastes_its_masks_at_their_size(tmp_path):
    """A 300x400 photo runs in the model at 64x85 (MIN_SIZE_TEST 64: 400 * 64 / 300 = 85.3), larger than the 50x60
    image, so detectron2's process (images, then photos) needs the photo's; a mask model pastes each of its up to
    100 detections' masks at 300x400, a box-only model none."""
    np.savez(tmp_path / "photos.npz", photo=np.zeros((300, 400, 3), np.uint8))
    info = model_info(resize={"min_size_test": 64, "max_size_test": 100}, test={"detections_per_image": 100})
    weights, pooled = memory.weight_bytes(pooled_model()), memory.pooled_bytes(pooled_model(), 1000)

    def needs(info):
        return run._needs(pooled_model(), info, {"image": np.zeros((50, 60, 3), np.float32)}, tmp_path / "photos.npz")

    assert needs(info)["saved_model"] == int(GIB + 3 * weights + 4096 * 64 * 85 + 8 * pooled + 12 * 100 * 300 * 400)
    assert needs(info)["detectron2"] == int(GIB + 2 * weights + 2048 * 64 * 85 + 2 * pooled
                                                   + 2 * 100 * 300 * 400)
    box_only = model_info(architecture={"mask": False}, resize={"min_size_test": 64, "max_size_test": 100})
    assert needs(box_only)["saved_model"] == int(GIB + 3 * weights + 4096 * 64 * 85 + 8 * pooled)
