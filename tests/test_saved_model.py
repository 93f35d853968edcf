"""OUT/saved_model, as TensorFlow's own tools load it: `saved_model_cli run` gives what verify's
tf.saved_model.load run gave (verify compared that with detectron2's whole inference, tests/test_convert.py asserts
its figures), and the `tensorpack` signature computes what the pb computes."""

import os
import subprocess
import sys

import numpy as np
import pytest

from core import contract, zoo
from core.files import load_outputs
from tests.conftest import IMAGES, run_python
from tests.parity import assert_same_detections
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
    p = pipeline(config)
    result = run_python("-m", "runners.saved_model_runner", p.out / "saved_model", p.work / "images.npz",
                        tmp_path / "out.npz", "--signature", contract.TENSORPACK_SIGNATURE)
    assert result.returncode == 0, result.stderr[-3000:]
    signature = {key: contract.labels_to_classes(v) for key, v in load_outputs(tmp_path / "out.npz").items()}
    pb = p.outputs("model.pb")
    for key in IMAGES:
        assert len(pb[key]["scores"]) >= 10
        assert_same_detections(pb[key], signature[key], EXACT["box"], EXACT["score"], EXACT["mask"] if p.mask else None)
