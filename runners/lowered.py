"""A model with its score threshold lowered to core.contract.LOWERED_SCORE_THRESHOLD (or set to any value), in each
runtime's own form:
verify compares every stage on the detections the per-image cap lets through, so that a model which detects nothing
above its threshold on the verification images is still compared, and no detection is missing on one side only
because round-off put its score on the other side of the threshold.

The threshold is the score_threshold input of the box head's NMS (core.contract.SCORE_THRESHOLD_INPUT). Each form
gets one new constant, which every thresholding NMS then reads; nothing else in the model changes. Each function
first reads the thresholds it replaces and refuses a model whose thresholds are not the one its model info states
(`check`): the deployed threshold is checked on its own, the lowered model is the deployed one but for that value.
"""

import copy

import numpy as np

from core import D2TFError
from core.contract import LOWERED_SCORE_THRESHOLD, NO_SCORE_THRESHOLD, SCORE_THRESHOLD_INPUT

NAME = "d2tf_lowered_score_threshold"  # the new constant, in each form
ARGUMENT = "--lower-score-threshold"  # the runners' option, FROM: the model info's threshold
ARGUMENT_HELP = ("check that the model's score threshold is FROM (the model info's), then run it with the threshold "
                 f"lowered to {LOWERED_SCORE_THRESHOLD:g}, as verify compares the stages")


def check(found, expected, what):
    """Raises D2TFError unless thresholds were `found` and each equals `expected` in float32 (in float16 for one
    stored so: a numpy float16)."""
    if not found:
        raise D2TFError(f"{what} has no score threshold at its NMS, where the model info says {expected:g}")
    stored = [np.float16 if isinstance(value, np.float16) else np.float32 for value in found]
    wrong = sorted({float(value) for value, kind in zip(found, stored) if kind(value) != kind(expected)})
    if wrong:
        raise D2TFError(f"{what} thresholds scores at {', '.join(f'{value:g}' for value in wrong)}, not at the "
                        f"model info's {expected:g}")


def _thresholds(threshold):
    """Whether an NMS's score threshold thresholds: above NO_SCORE_THRESHOLD, and above the lowest value of its
    type (float16's -65504 in model.float16.tflite, where the converter stored -inf so)."""
    value = np.asarray(threshold).reshape(-1)[0]
    return float(value) > max(NO_SCORE_THRESHOLD, float(np.finfo(value.dtype).min))


def onnx_model(model, expected, what, value=LOWERED_SCORE_THRESHOLD):
    """The ONNX ModelProto `model`, changed in place, every thresholding NonMaxSuppression (in any subgraph) reading
    `value` from a new Constant node (not an initializer: those are the checkpoint's tensors)."""
    from onnx import helper, numpy_helper

    graphs = _onnx_graphs(model.graph)
    values = {tensor.name: numpy_helper.to_array(tensor) for graph in graphs for tensor in graph.initializer}
    values.update({node.output[0]: numpy_helper.to_array(node.attribute[0].t) for graph in graphs
                   for node in graph.node if node.op_type == "Constant" and node.attribute[0].name == "value"})
    found = []
    for node in (node for graph in graphs for node in graph.node):
        if node.op_type != "NonMaxSuppression" or len(node.input) <= SCORE_THRESHOLD_INPUT:
            continue
        name = node.input[SCORE_THRESHOLD_INPUT]
        if name not in values:
            raise D2TFError(f"{what}: the score threshold of an NMS is computed, not a constant")
        if _thresholds(values[name]):
            found.append(float(values[name].reshape(-1)[0]))
            node.input[SCORE_THRESHOLD_INPUT] = NAME
    check(found, expected, what)
    model.graph.node.insert(0, helper.make_node("Constant", [], [NAME], value=numpy_helper.from_array(
        np.float32([value]))))
    return model


def _onnx_graphs(graph):
    """`graph` and every subgraph (If and Loop bodies) in it."""
    graphs = [graph]
    for node in graph.node:
        for attribute in node.attribute:
            for sub in [attribute.g] * attribute.HasField("g") + list(attribute.graphs):
                graphs += _onnx_graphs(sub)
    return graphs


_PASS_THROUGH = ("Identity", "Reshape", "Squeeze", "ExpandDims")  # what may sit between the constant and the NMS


def graph_def(graph, expected, what, value=LOWERED_SCORE_THRESHOLD):
    """The TensorFlow GraphDef `graph`, changed in place, every thresholding NonMaxSuppression reading `value` from
    a new Const."""
    import tensorflow as tf

    if any(node.op.startswith("NonMaxSuppression") for function in graph.library.function
           for node in function.node_def):
        raise D2TFError(f"{what} has an NMS inside a function, where its score threshold cannot be lowered")
    nodes = {node.name: node for node in graph.node}
    found = []
    for node in graph.node:
        if not node.op.startswith("NonMaxSuppression"):
            continue
        source = nodes[node.input[SCORE_THRESHOLD_INPUT].split(":")[0]]
        while source.op in _PASS_THROUGH:
            source = nodes[source.input[0].split(":")[0]]
        if source.op != "Const":
            raise D2TFError(f"{what}: the score threshold of an NMS is computed ({source.op}), not a constant")
        current = tf.make_ndarray(source.attr["value"].tensor)
        if _thresholds(current):
            found.append(float(current.reshape(-1)[0]))
            node.input[SCORE_THRESHOLD_INPUT] = NAME
    check(found, expected, what)
    constant = graph.node.add(name=NAME, op="Const")
    constant.attr["dtype"].type = tf.float32.as_datatype_enum
    constant.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.float32(value)))
    return graph


def tflite_model(content, expected, what, value=LOWERED_SCORE_THRESHOLD):
    """A TFLite flatbuffer's bytes with every thresholding NON_MAX_SUPPRESSION_V4/V5 reading `value` from a new
    constant tensor (one per subgraph that has such an op, sharing one new buffer)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    nms = _opcodes(model, schema.BuiltinOperator.NON_MAX_SUPPRESSION_V4, schema.BuiltinOperator.NON_MAX_SUPPRESSION_V5)
    dequantize = _opcodes(model, schema.BuiltinOperator.DEQUANTIZE)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.float32(value).tobytes(), np.uint8)
    model.buffers.append(buffer)
    found = []
    for subgraph in model.subgraphs:
        lowered = None  # this subgraph's new tensor, made when it is first needed
        for op in (op for op in subgraph.operators if op.opcodeIndex in nms):
            current = _constant(model, subgraph, op.inputs[SCORE_THRESHOLD_INPUT], dequantize)
            if current is None:
                raise D2TFError(f"{what}: the score threshold of an NMS is computed, not a constant")
            if not _thresholds(current):
                continue
            found.append(current[0])
            if lowered is None:
                new = copy.deepcopy(subgraph.tensors[op.inputs[SCORE_THRESHOLD_INPUT]])  # float32, as NMS reads it
                new.buffer, new.name = len(model.buffers) - 1, NAME.encode()
                subgraph.tensors.append(new)
                lowered = len(subgraph.tensors) - 1
            op.inputs[SCORE_THRESHOLD_INPUT] = lowered
    check(found, expected, what)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _opcodes(model, *builtins):
    """The indices of a TFLite model's operator codes that are any of `builtins` (BuiltinOperator values)."""
    return {index for index, code in enumerate(model.operatorCodes)
            if max(code.builtinCode, code.deprecatedBuiltinCode) in builtins}


_STORED = {0: np.float32, 1: np.float16}  # TFLite's TensorType FLOAT32, FLOAT16


def _constant(model, subgraph, index, dequantize):
    """The values of a TFLite tensor held in a buffer, as stored (float32, or float16), or of the one a DEQUANTIZE
    reads (a float16 model's constants: model.float16.tflite); None for a tensor computed otherwise."""
    tensor = subgraph.tensors[index]
    data = model.buffers[tensor.buffer].data
    if data is not None and len(data) and tensor.type in _STORED:
        return np.frombuffer(np.asarray(data, np.uint8).tobytes(), _STORED[tensor.type])
    source = next((op for op in subgraph.operators if index in op.outputs), None)
    if source is not None and source.opcodeIndex in dequantize:
        return _constant(model, subgraph, source.inputs[0], ())
    return None


def detectron2_model(model, value):
    """Sets the test score threshold of every module of a detectron2 model that has one (the box predictors of
    every R-CNN head and cascade stage, RetinaNet) to `value`; returns the thresholds it replaced."""
    found = []
    for module in model.modules():
        if hasattr(module, "test_score_thresh"):
            found.append(module.test_score_thresh)
            module.test_score_thresh = value
    return found
