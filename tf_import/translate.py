"""Walking an ONNX graph in order and building the TensorFlow ops of each node through its handler."""

import re

import onnx
import tensorflow as tf
from onnx import numpy_helper

from core import D2TFError
from tf_import.ops import SINCE, TFLITE, load_all
from tf_import.value import NotKnown, Value

# The default-domain opsets whose op forms the handlers implement; export writes 16. Before 11, Clip and Pad
# take as attributes what the handlers read as inputs, and Resize has no roi input; 18 turns ReduceMax/Mean and
# Pad attributes into inputs and adds Split's num_outputs; no handled op changes from 16 to 17.
OPSETS = range(11, 18)


class UnsupportedOp(D2TFError):
    pass


def refuse(node, why):
    """An op or attribute we have no exact translation for: stop, name the node and say what to do."""
    return UnsupportedOp(
        f"{node.op_type} node {node.name!r}: {why}. d2tf translates nothing approximately; add or extend the "
        f"handler in tf_import/ops (see `python -m tf_import --list-ops`), or rewrite the node in a graphfix pass"
    )


class Translator:
    """Callable inside a tf.function: maps the graph's input tensors to its output tensors (ONNX layouts). With
    `tflite`, the handlers build forms TFLite runs with builtin ops only (tf_import/tflite.py)."""

    def __init__(self, model, tflite=False):
        self.graph = model.graph
        self.tflite = tflite
        self.opset = default_opset(model)
        self.handlers = load_all()
        domains = {n.domain for n in self.graph.node} - {"", "ai.onnx"}
        if domains:
            raise D2TFError(f"ops from domain(s) {sorted(domains)}: only the standard ONNX domain is supported")
        missing = [n for n in self.graph.node if n.op_type not in self.handlers]
        if missing:
            raise refuse(missing[0], f"no handler for op type {missing[0].op_type} "
                         f"({len(missing)} unhandled node(s): {sorted({n.op_type for n in missing})})")
        for node in self.graph.node:
            if self.opset < SINCE.get(node.op_type, 0):
                raise refuse(node, f"opset {self.opset}'s {node.op_type} differs from the opset-"
                             f"{SINCE[node.op_type]} form its handler implements")

    def __call__(self, **inputs):
        token = TFLITE.set(self.tflite)
        try:
            return self._translate(inputs)
        finally:
            TFLITE.reset(token)

    def _translate(self, inputs):
        env = {name: Value(tensor) for name, tensor in inputs.items()}
        for init in self.graph.initializer:
            env[init.name] = Value.constant(numpy_helper.to_array(init))
        for node in self.graph.node:
            args = [env[name] if name else None for name in node.input]
            attrs = {a.name: _attribute(a) for a in node.attribute}
            with tf.name_scope(_scope_name(node)):
                outputs = self._handle(node, args, attrs)
            if not isinstance(outputs, (list, tuple)):
                outputs = [outputs]
            for name, out in zip(node.output, outputs):
                env[name] = out if isinstance(out, Value) else Value(out)
        return {out.name: env[out.name].onnx for out in self.graph.output}

    def _handle(self, node, args, attrs):
        try:
            return self.handlers[node.op_type](node, args, attrs)
        except NotKnown as unknown:
            raise refuse(node, self._unknown_input(node, args, unknown)) from None

    def _unknown_input(self, node, args, unknown):
        """Which input the handler needed at translation time, by its ONNX schema name and its tensor name."""
        index = args.index(unknown.value)  # Values compare by identity
        formal = onnx.defs.get_schema(node.op_type, self.opset).inputs
        name = formal[min(index, len(formal) - 1)].name  # the last formal input is the variadic one
        return (f"the {unknown.what} of input {name!r} (tensor {node.input[index]!r}) is only known at run time, "
                f"and the handler needs it when translating")


def default_opset(model):
    """The model's default-domain opset version, refused outside OPSETS."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise D2TFError("the model imports no default-domain (ai.onnx) opset")
    if versions[0] not in OPSETS:
        raise D2TFError(f"the model imports ONNX opset {versions[0]} (ai.onnx); d2tf translates opsets "
                        f"{OPSETS.start} to {OPSETS.stop - 1}: re-export it at opset 16, as d2tf's export does")
    return versions[0]


def _attribute(attr):
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if attr.type == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(value)
    return value


def _scope_name(node):
    """TF name scopes from ONNX node names (which carry the detectron2 module path)."""
    name = re.sub(r"[^A-Za-z0-9_.\-/]", "_", (node.name or node.output[0]).strip("/"))
    return name if re.match(r"[A-Za-z0-9.]", name) else f"n{name}"
