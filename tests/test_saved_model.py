"""OUT/saved_model, as TensorFlow's own tools load it: `saved_model_cli run` gives what verify's
tf.saved_model.load run gave (verify compared that with detectron2's whole inference, tests/test_convert.py asserts
its figures), and the `tensorpack` signature computes what the pb computes."""

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

from core import contract, zoo
from core.files import load_outputs
from core.metadata import write_info
from tests.builds import IMAGES
from tests.model_infos import model_info
from tests.parity import assert_same_detections
from tests.processes import run_python
from tests.threshold_detector import detector_nodes, graph_model
from verify.agreement import EXACT

# The default example in exact mode (masks) and a box-only model in tensorpack mode.
CONFIGS = [zoo.DEFAULT_EXAMPLE, "COCO-Detection/faster_rcnn_R_50_C4_3x.yaml"]


@pytest.mark.parametrize("config", CONFIGS, ids=zoo.short_name)
def test_saved_model_cli_runs_the_serving_signature(config, pipeline, tmp_path):
    p = pipeline(config)
    with np.load(p.work / "photos.npz") as photos:
        key = photos.files[1]  # the photo larger than the test resize
        photo = photos[key]
    np.save(tmp_path / "photo.npy", photo[None])
    saved_model_cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")  # TensorFlow's console script
    result = subprocess.run([saved_model_cli, "run", "--dir", str(p.out / "saved_model"), "--tag_set", "serve",
                             "--signature_def", contract.SERVING_SIGNATURE,
                             "--inputs", f"{contract.SERVING_INPUT}={tmp_path / 'photo.npy'}",
                             "--outdir", str(tmp_path / "cli")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = {name: np.load(tmp_path / "cli" / f"{name}.npy") for name in contract.serving_outputs(p.mask)}
    assert outputs["num_detections"].shape == (1,) and outputs["detection_boxes"].shape[2] == 4
    assert 0 <= outputs["detection_boxes"].min() and outputs["detection_boxes"].max() <= 1, "normalised"
    cli = contract.serving_to_detections(outputs, *photo.shape[:2])
    verified = load_outputs(p.work / "saved_model.npz")[key]
    assert len(cli["scores"]) == len(verified["scores"]) >= 5
    # The same model in another process, with another thread count: float round-off apart.
    assert_same_detections(verified, cli, EXACT["box"], EXACT["score"], None)
    if p.mask:
        assert cli["masks"].shape == (len(cli["scores"]), *photo.shape[:2]) and cli["masks"].dtype == np.uint8


@pytest.mark.parametrize("config", CONFIGS, ids=zoo.short_name)
def test_tensorpack_signature_computes_what_the_pb_computes(config, pipeline, tmp_path):
    """On verify's first image (one is enough for the same graph under another signature: the other cost a C4
    model at 1000 proposals half a minute); the pb ran with the score threshold lowered, as verify runs it."""
    p = pipeline(config)
    key = next(iter(IMAGES))
    with np.load(p.work / "images.npz") as images:
        np.savez(tmp_path / "image.npz", **{key: images[key]})
    result = run_python("-m", "runners.saved_model_runner", p.out / "saved_model", tmp_path / "image.npz",
                        tmp_path / "out.npz", "--signature", contract.TENSORPACK_SIGNATURE)
    assert result.returncode == 0, result.stderr[-3000:]
    signature = contract.labels_to_classes(load_outputs(tmp_path / "out.npz")[key])
    pb = p.outputs("model.pb")[key]
    above = pb["scores"] > p.info.test.score_thresh  # the signature keeps what the model's threshold keeps
    assert above.sum() >= 10
    pb = {name: pb[name][above] for name in contract.served_outputs(pb)}  # the detections, not the proposals
    assert_same_detections(pb, signature, EXACT["box"], EXACT["score"], EXACT["mask"] if p.mask else None)


# One 64x64 photo: pixel (y 5, x 7) has R 10 and B 20, pixel (30, 50) G 40. tests/threshold_detector.py makes a
# detection of each value above 0.5 in the order of the graph's input values, boxed [0, 0, v, 2v]: in BGR order
# 20, 10, 40; in RGB order 10, 20, 40.
PHOTO = np.zeros((1, 64, 64, 3), np.uint8)
PHOTO[0, 5, 7] = [10, 0, 20]
PHOTO[0, 30, 50] = [0, 40, 0]


# With class names, the label map in the SavedModel's assets (names with a quote and a non-ASCII letter).
NAMES = ["cat", 'a "big" dog', "café"]
LABEL_MAP = ('item {\n  id: 1\n  name: "cat"\n}\nitem {\n  id: 2\n  name: "a \\"big\\" dog"\n}\n'
             'item {\n  id: 3\n  name: "café"\n}\n')


@pytest.mark.parametrize("format, values, names", [("BGR", [20, 10, 40], NAMES), ("RGB", [10, 20, 40], None)])
def test_the_serving_signature_answers_in_the_object_detection_apis_layout(format, values, names, tmp_path):
    """Literal outputs of a hand-made detector's SavedModel (no test resize): num_detections float [1]; boxes
    [1, N, 4] as ymin, xmin, ymax, xmax over the image's height and width, clipped to it ([0, 0, 40, 80] ends at
    y 64); scores [1, N]; classes float, 1-based [1, N]; the photo handed to the graph in the model's
    INPUT.FORMAT; the class names, when known, as a label map among its assets."""
    model = graph_model(detector_nodes("corner"))
    write_info(model, model_info(architecture={"mask": False}, outputs=contract.served_outputs(contract.onnx_outputs()),
                                 resize={"min_size_test": 0}, input={"format": format}, class_names=names))
    onnx.save(model, tmp_path / "detector.onnx")
    result = run_python("-m", "tf_import", tmp_path / "detector.onnx", "--out", tmp_path / "out", "--no-tflite")
    assert result.returncode == 0, result.stderr[-3000:]
    np.save(tmp_path / "photo.npy", PHOTO)
    saved_model_cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([saved_model_cli, "run", "--dir", str(tmp_path / "out" / "saved_model"), "--tag_set",
                             "serve", "--signature_def", "serving_default",
                             "--inputs", f"input_tensor={tmp_path / 'photo.npy'}", "--outdir", str(tmp_path / "cli")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    got = {name: np.load(tmp_path / "cli" / f"{name}.npy") for name in
           ("num_detections", "detection_boxes", "detection_scores", "detection_classes")}
    assert {name: value.dtype for name, value in got.items()} == dict.fromkeys(got, np.float32)
    assert got["num_detections"].tolist() == [3.0]
    assert got["detection_boxes"].tolist() == [[[0.0, 0.0, min(2 * v, 64) / 64, v / 64] for v in values]]
    assert got["detection_scores"].tolist() == [[float(v) for v in values]]
    assert got["detection_classes"].tolist() == [[v + 1.0 for v in values]]
    label_map = tmp_path / "out" / "saved_model" / "assets" / "label_map.pbtxt"
    assert (label_map.read_text(encoding="utf-8") if names else label_map.exists()) == (LABEL_MAP if names else False)
