"""The frozen pb: the translated graph behind tensorpack's predict.py interface, constants only."""

import tensorflow as tf
from tensorflow.python.framework import op_def_registry

from core import D2TFError, contract
from core.metadata import read_info
from tf_import.translate import Translator

_LOOP = {"While", "StatelessWhile", "LoopCond", "Switch", "Merge", "Enter", "Exit", "NextIteration"}  # frozen: v1 ops
_CONTROL_FLOW = {"If", "StatelessIf"} | _LOOP


def _allowed_loops(model):
    """Exact (adaptive) RoiAlign loops over boxes (tf_import/ops/roi_align.py) and the model's own ONNX Loops
    (tf_import/ops/control_flow.py); nothing else may."""
    adaptive = any(n.op_type == "RoiAlign" and all(a.i == 0 for a in n.attribute if a.name == "sampling_ratio")
                   for n in model.graph.node)
    looped = any(n.op_type == "Loop" for n in model.graph.node)
    return _LOOP if adaptive or looped else set()


def interface_function(model, tflite=False):
    """The translated model as a tf.function with tensorpack's interface (core.contract): input `image` [H, W, 3]
    BGR float, the model info's outputs under `output/` (`tflite`: translated for TFLite, the detections only),
    classes as 1-based labels."""
    translator = Translator(model, tflite=tflite)
    names = [o.name for o in model.graph.output]
    expected = read_info(model, "the model").outputs
    if names != expected or [i.name for i in model.graph.input] != [contract.INPUT]:
        raise D2TFError(f"expected a d2tf graph (input image; outputs {expected}), got inputs "
                        f"{[i.name for i in model.graph.input]} and outputs {names}")

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32, name=contract.INPUT)], autograph=False)
    def serve(image):
        out = translator(image=image)
        if "classes" in out:
            out["classes"] = tf.cast(out["classes"], tf.int64) + contract.LABEL_BASE
        answered = contract.served_outputs(names) if tflite else names
        with tf.name_scope(contract.PB_SCOPE):
            return {pb: tf.identity(out[name], name=pb) for name, pb in zip(answered, contract.pb_outputs(answered))}

    return serve


def frozen_graph_def(model):
    """GraphDef with tensorpack's interface (core.contract): input `image:0`, outputs `output/*:0`."""
    serve = interface_function(model)
    # Every weight is a Const already (handlers embed them), so the traced graph is frozen as it stands;
    # convert_variables_to_constants_v2 would only spend ~15 s finding nothing to convert.
    graph_def = serve.get_concrete_function().graph.as_graph_def()
    variables = sorted({n.op for n in graph_def.node} & {"VarHandleOp", "VariableV2", "ReadVariableOp"})
    if variables:
        raise D2TFError(f"the translated graph holds variable ops {variables}")
    flow = sorted({n.op for n in graph_def.node} & _CONTROL_FLOW - _allowed_loops(model))
    if flow:
        raise D2TFError(f"the translated graph holds control flow ops {flow}")
    merge_repeated_nodes(graph_def, keep={contract.INPUT} | {n.name for n in graph_def.node
                                                            if n.name.startswith(contract.PB_SCOPE + "/")})
    strip_default_attrs(graph_def)
    return graph_def


_LARGE = 1024  # bytes of an attribute beyond which a node is not compared (weights are never repeats worth finding)


def merge_repeated_nodes(graph_def, keep=()):
    """Merges the nodes that compute the same thing (op, attributes and inputs equal, stateless) into the first of
    them, in one pass in graph order (inputs come first), so chains of repeats merge too. The handlers make a
    constant for each use (axes, shapes, thresholds): R50-FPN's graph has 2956 repeats among 3239 Consts. Fewer
    nodes make the SavedModel's first run and load faster (grappler walks them) and Netron's view smaller; the pb's
    first run is bound by copying its weights and is unchanged. The nodes named in `keep` stay as they are."""
    merged, first = {}, {}

    def renamed(name):
        control, (node, colon, port) = name.startswith("^"), name.lstrip("^").partition(":")
        return "^" * control + merged.get(node, node) + colon + port

    kept = []
    for node in graph_def.node:
        node.input[:] = [renamed(i) for i in node.input]
        op_def = op_def_registry.get(node.op)
        if (node.name in keep or op_def is None or op_def.is_stateful
                or any(value.ByteSize() > _LARGE for value in node.attr.values())):
            kept.append(node)
            continue
        attrs = tuple((k, v.SerializeToString(deterministic=True)) for k, v in sorted(node.attr.items()))
        key = (node.op, node.device, tuple(node.input), attrs)
        if key in first:
            merged[node.name] = first[key]
        else:
            first[key] = node.name
            kept.append(node)
    for node in kept:  # an input listed after its consumer (not in a traced graph, but correct either way)
        node.input[:] = [renamed(i) for i in node.input]
    del graph_def.node[:]
    graph_def.node.extend(kept)


def strip_default_attrs(graph_def):
    """Drops every node attribute that equals its op's default. Attributes added in newer TF (MatMul's
    grad_a/grad_b) are then absent, and an older TF that does not know them loads the pb without complaint."""
    bodies = [f.node_def for f in graph_def.library.function]  # loop bodies (exact RoIAlign, Loop)
    for node in [*graph_def.node, *(n for body in bodies for n in body)]:
        op_def = op_def_registry.get(node.op)
        defaults = {a.name: a.default_value for a in op_def.attr if a.HasField("default_value")} if op_def else {}
        for name in [n for n, value in node.attr.items() if n in defaults and value == defaults[n]]:
            del node.attr[name]
