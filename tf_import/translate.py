"""Walking an ONNX graph in order and building the TensorFlow ops of each node through its handler."""

import re

import onnx
import tensorflow as tf
from onnx import numpy_helper

from d2tf import D2TFError
from tf_import.ops import load_all
from tf_import.value import Value


class UnsupportedOp(D2TFError):
    pass


def refuse(node, why):
    """An op or attribute we have no exact translation for: stop, name the node and say what to do."""
    return UnsupportedOp(
        f"{node.op_type} node {node.name!r}: {why}. d2tf translates nothing approximately; add or extend the "
        f"handler in tf_import/ops (see `python -m tf_import --list-ops`), or rewrite the node in a graphfix pass"
    )


class Translator:
    """Callable inside a tf.function: maps the graph's input tensors to its output tensors (ONNX layouts)."""

    def __init__(self, model):
        self.graph = model.graph
        self.handlers = load_all()
        missing = [n for n in self.graph.node if n.op_type != "Constant" and n.op_type not in self.handlers]
        if missing:
            raise refuse(missing[0], f"no handler for op type {missing[0].op_type} "
                         f"({len(missing)} unhandled node(s): {sorted({n.op_type for n in missing})})")
        domains = {n.domain for n in self.graph.node} - {"", "ai.onnx"}
        if domains:
            raise D2TFError(f"ops from domain(s) {sorted(domains)}: only the standard ONNX domain is supported")

    def __call__(self, **inputs):
        env = {name: Value(tensor) for name, tensor in inputs.items()}
        for init in self.graph.initializer:
            env[init.name] = Value.constant(numpy_helper.to_array(init))
        for node in self.graph.node:
            if node.op_type == "Constant":
                env[node.output[0]] = Value.constant(numpy_helper.to_array(node.attribute[0].t))
                continue
            args = [env[name] if name else None for name in node.input]
            attrs = {a.name: _attribute(a) for a in node.attribute}
            with tf.name_scope(_scope_name(node)):
                outputs = self.handlers[node.op_type](node, args, attrs)
            if not isinstance(outputs, (list, tuple)):
                outputs = [outputs]
            for name, out in zip(node.output, outputs):
                env[name] = out if isinstance(out, Value) else Value(out)
        return {out.name: env[out.name].onnx for out in self.graph.output}


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
