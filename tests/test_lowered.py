"""runners/lowered.py: each form of a model run with its score threshold lowered, every thresholding NMS and only
those, after checking the threshold it replaces; on hand-built graphs whose kept boxes are worked out by hand
(four far-apart boxes scored 0.9, 0.04, 0.3 and 0.0: at 0.05 NMS keeps boxes 0 and 2, at 0 boxes 0, 1 and 2, at -inf
all four)."""

import json
import os

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from core import D2TFError
from runners import lowered
from tests.processes import CHILDREN, run_python

BOXES = np.float32([[[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]]])
SCORES = np.float32([[[0.9, 0.04, 0.3, 0.0]]])


def _constant(name, value, dtype=np.float32):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array([value], dtype)))


def _nms_graph(head_threshold=0.05, rpn_threshold=None):
    """Two NonMaxSuppression nodes on the same boxes: the box head's, thresholding at `head_threshold` (a Constant),
    and an RPN's, with no threshold input or `rpn_threshold` (a Constant)."""
    rpn_inputs = ["boxes", "scores", "limit", "iou"] + ["rpn_low"] * (rpn_threshold is not None)
    nodes = [_constant("limit", 10, np.int64), _constant("iou", 0.5), _constant("low", head_threshold),
             *([_constant("rpn_low", rpn_threshold)] if rpn_threshold is not None else []),
             helper.make_node("NonMaxSuppression", ["boxes", "scores", "limit", "iou", "low"], ["head"]),
             helper.make_node("NonMaxSuppression", rpn_inputs, ["rpn"])]
    inputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 4, 4]),
              helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 4])]
    outputs = [helper.make_tensor_value_info(name, TensorProto.INT64, None) for name in ("head", "rpn")]
    graph = helper.make_graph(nodes, "nms", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])


def _kept(model):
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [sorted(selected[:, 2].tolist()) for selected in session.run(None, {"boxes": BOXES, "scores": SCORES})]


@pytest.mark.parametrize("rpn_threshold", [None, float("-inf")], ids=["rpn-without-threshold", "rpn-at-minus-inf"])
def test_onnx_lowering_changes_the_thresholding_nms_only(rpn_threshold):
    model = _nms_graph(rpn_threshold=rpn_threshold)
    assert _kept(model) == [[0, 2], [0, 1, 2, 3]]
    assert _kept(lowered.onnx_model(model, 0.05, "model.onnx")) == [[0, 1, 2], [0, 1, 2, 3]]
    assert not any(i.name == lowered.NAME for i in model.graph.initializer), "initializers are checkpoint tensors"


def test_onnx_lowering_sets_any_value():
    assert _kept(lowered.onnx_model(_nms_graph(), 0.05, "model.onnx", value=0.5))[0] == [0]


@pytest.mark.parametrize("model, expected, error", [
    (_nms_graph(0.05), 0.7, "model.onnx thresholds scores at 0.05, not at the model info's 0.7"),
    (_nms_graph(float("-inf")), 0.05, "model.onnx has no score threshold at its NMS, where the model info says 0.05"),
], ids=["another-threshold", "none"])
def test_onnx_lowering_refuses_a_threshold_that_is_not_the_model_infos(model, expected, error):
    with pytest.raises(D2TFError) as e:
        lowered.onnx_model(model, expected, "model.onnx")
    assert str(e.value) == error


def test_a_computed_onnx_threshold_is_refused():
    model = _nms_graph()
    model.graph.node.insert(0, helper.make_node("Identity", ["low_raw"], ["low"]))
    model.graph.node[3].output[0] = "low_raw"  # the Constant now feeds an Identity
    with pytest.raises(D2TFError, match="model.onnx: the score threshold of an NMS is computed, not a constant"):
        lowered.onnx_model(model, 0.05, "model.onnx")


def test_pb_and_tflite_lowering_change_the_thresholding_nms_only():
    """The same two NMS calls as TensorFlow and TFLite hold them (tests/children/lowered_tf.py): the box head's
    threshold a Reshape of a Const, the RPN's -inf; and as the float16 TFLite variant holds them."""
    result = run_python(os.path.join(CHILDREN, "lowered_tf.py"))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for form, name in (("pb", "model.pb"), ("tflite", "model.tflite")):
        assert report[form] == [[0, 1, 2, 3], [0, 2]], form  # sorted: the RPN's, then the head's
        assert report[f"{form}_lowered"] == [[0, 1, 2], [0, 1, 2, 3]], form
        assert report[f"{form}_wrong"] == f"{name} thresholds scores at 0.05, not at the model info's 0.5"
    # model.float16.tflite: the threshold read from its float16 constant through the DEQUANTIZE (0.05 so stored is
    # 0.0499878), the RPN's -inf stored as float16's lowest, -65504, which thresholds nothing either
    assert report["tflite_float16"] == [[0, 1, 2, 3], [0, 2]]
    assert report["tflite_float16_lowered"] == [[0, 1, 2], [0, 1, 2, 3]]
    assert report["tflite_float16_wrong"] == ("model.float16.tflite thresholds scores at 0.0499878, not at the model "
                                              "info's 0.5")


def test_a_detectron2_models_thresholds_are_set_and_returned():
    class Predictor:
        test_score_thresh = 0.05

    class Model:
        def modules(self):
            return [object(), self.stage1, self.stage2]

    model = Model()
    model.stage1, model.stage2 = Predictor(), Predictor()
    assert lowered.detectron2_model(model, 0.0) == [0.05, 0.05]
    assert (model.stage1.test_score_thresh, model.stage2.test_score_thresh) == (0.0, 0.0)
