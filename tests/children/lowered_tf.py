"""`python tests/children/lowered_tf.py`: runners/lowered.py on a frozen TF graph and on its TFLite form, each with
two NMS calls as tf_import writes them: one thresholding scores at 0.05 (the box head's, through a Reshape of one
Const, as tf_import/ops/non_max_suppression.py builds it), one at -inf (an RPN's). Prints, as JSON, the indices each
keeps before and after lowering, and the one-line errors for a wrong expected threshold. A child process:
TensorFlow must not share the test process with PyTorch."""

import json

import numpy as np
import tensorflow as tf

from core import D2TFError
from runners import lowered

# Four far-apart boxes scored 0.9, 0.04, 0.3 and 0.0 (0.0 is not above a threshold of 0 either).
BOXES = np.float32([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]])
SCORES = np.float32([0.9, 0.04, 0.3, 0.0])


def nms(boxes, scores, low):
    padded, count = tf.raw_ops.NonMaxSuppressionV4(boxes=boxes, scores=scores, max_output_size=10, iou_threshold=0.5,
                                                   score_threshold=low, pad_to_max_output_size=True)
    return padded[:count]


@tf.function(input_signature=[tf.TensorSpec([4, 4], tf.float32), tf.TensorSpec([4], tf.float32)])
def model(boxes, scores):
    low = tf.reshape(tf.constant([0.05]), [])
    return {"head": nms(boxes, scores, low), "rpn": nms(boxes, scores, float("-inf"))}


def errors(change):
    try:
        change()
    except D2TFError as e:
        return str(e)
    return None


def main():
    function = model.get_concrete_function()
    graph = function.graph.as_graph_def()
    report = {"pb": run_graph(graph)}
    report["pb_wrong"] = errors(lambda: lowered.graph_def(tf.compat.v1.GraphDef.FromString(
        graph.SerializeToString()), 0.5, "model.pb"))
    lowered.graph_def(graph, 0.05, "model.pb")
    report["pb_lowered"] = run_graph(graph)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    flatbuffer = converter.convert()
    report["tflite"] = run_tflite(flatbuffer)
    report["tflite_wrong"] = errors(lambda: lowered.tflite_model(flatbuffer, 0.5, "model.tflite"))
    report["tflite_lowered"] = run_tflite(lowered.tflite_model(flatbuffer, 0.05, "model.tflite"))

    converter.optimizations, converter.target_spec.supported_types = [tf.lite.Optimize.DEFAULT], [tf.float16]
    half = converter.convert()  # the threshold a float16 constant, DEQUANTIZE'd (model.float16.tflite)
    report["tflite_float16"] = run_tflite(half)
    report["tflite_float16_wrong"] = errors(lambda: lowered.tflite_model(half, 0.5, "model.float16.tflite"))
    report["tflite_float16_lowered"] = run_tflite(lowered.tflite_model(half, 0.05, "model.float16.tflite"))
    print(json.dumps(report))


def run_graph(graph_def):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    outputs = [op.name for op in graph.get_operations() if op.type == "Identity" and not op.outputs[0].consumers()]
    inputs = [op.name for op in graph.get_operations() if op.type == "Placeholder"]
    with tf.compat.v1.Session(graph=graph) as session:
        values = session.run([f"{name}:0" for name in outputs], {f"{inputs[0]}:0": BOXES, f"{inputs[1]}:0": SCORES})
    return sorted(sorted(v.tolist()) for v in values)


def run_tflite(flatbuffer):
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], BOXES if "boxes" in detail["name"] else SCORES)
    interpreter.invoke()
    return sorted(sorted(interpreter.get_tensor(d["index"]).tolist()) for d in interpreter.get_output_details())


if __name__ == "__main__":
    main()
