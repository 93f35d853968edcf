"""Walking an ONNX graph (and a Loop's body, in its scope) in order and building the TensorFlow ops of each node through
its handler."""

import contextvars
import functools
import re

import onnx
import tensorflow as tf
from onnx import numpy_helper

from core import D2TFError
from tf_import import roi_chunks, subgraphs
from tf_import.ops import SINCE, TFLITE, load_all
from tf_import.value import NotKnown, Value

# The default-domain opsets whose op forms the handlers implement; export writes 16. Before 11, Clip and Pad
# take as attributes what the handlers read as inputs, and Resize has no roi input; 18 turns ReduceMax/Mean and
# Pad attributes into inputs and adds Split's num_outputs; no handled op changes from 16 to 17.
OPSETS = range(11, 18)

# translate_body for the node being handled, in its graph's scope (Translator._body). A context variable
# as ops.TFLITE is: the one handler with a body (Loop) asks for it, and the others keep (node, inputs, attrs).
_BODY = contextvars.ContextVar("body")


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
        # TFLite holds every tensor sized by the box count until the next run: run the per-box nodes in chunks
        self.chunked = {r.entry.output[0]: r for r in roi_chunks.regions(model)} if tflite else {}
        nodes = list(subgraphs.nodes(self.graph))
        domains = {n.domain for n in nodes} - {"", "ai.onnx"}
        if domains:
            raise D2TFError(f"ops from domain(s) {sorted(domains)}: only the standard ONNX domain is supported")
        missing = [n for n in nodes if n.op_type not in self.handlers]
        if missing:
            raise refuse(missing[0], f"no handler for op type {missing[0].op_type} "
                         f"({len(missing)} unhandled node(s): {sorted({n.op_type for n in missing})})")
        for node in nodes:
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
        env = self._walk(self.graph, {name: Value(tensor) for name, tensor in inputs.items()})
        return {out.name: env[out.name].onnx for out in self.graph.output}

    def _walk(self, graph, scope):
        """`scope` (name -> Value: the graph's inputs, and for a body the enclosing graphs' values) with the values
        of `graph`'s initializers and nodes added."""
        env = dict(scope)
        for init in graph.initializer:
            env[init.name] = Value.constant(numpy_helper.to_array(init))
        regions = self.chunked if graph is self.graph else {}
        in_chunks = {node.output[0] for region in regions.values() for node in region.members}
        token = _BODY.set(functools.partial(self._body, env))
        try:
            for node in graph.node:
                if node.output[0] in regions:
                    env.update(self._in_chunks(regions[node.output[0]], env))
                if node.output[0] in in_chunks:
                    continue
                args = [env[name] if name else None for name in node.input]
                attrs = {a.name: _attribute(a) for a in node.attribute}
                with tf.name_scope(_scope_name(node)):
                    outputs = self._handle(node, args, attrs)
                if not isinstance(outputs, (list, tuple)):
                    outputs = [outputs]
                for name, out in zip(node.output, outputs):
                    env[name] = out if isinstance(out, Value) else Value(out)
        finally:
            _BODY.reset(token)
        return env

    def _body(self, env, body):
        """translate_body's function for a body of a node in the graph whose values are `env`."""
        # What the body reads of the enclosing graphs, taken now, in their TF graph: a value held channels-last is
        # transposed once here rather than once per iteration.
        outer = {name: _enclosed(env[name]) for name in subgraphs.enclosing_reads(body)}

        def outputs(inputs):  # called once, when TF traces the loop's body
            values = self._walk(body, {**outer, **dict(zip([i.name for i in body.input], inputs))})
            return [values[out.name] for out in body.output]

        return outputs

    def _in_chunks(self, region, env):
        """{name: Value} of a roi_chunks.Region's outputs: its body run on `region.rows` boxes at a time in a while
        loop (the last chunk on the rest: no padded box is computed), the results concatenated along the box
        axis."""
        roi_align = region.entry
        boxes, batch = (env[name].onnx for name in roi_align.input[1:3])
        outer = {name: _enclosed(env[name]) for name in region.reads}
        outer[roi_align.input[0]] = Value(env[roi_align.input[0]].nhwc, nhwc=True)  # transposed once, not per chunk
        count = tf.shape(boxes)[0]

        def chunk(start, *done):
            stop = tf.minimum(start + region.rows, count)
            rows = {roi_align.input[1]: Value(boxes[start:stop]), roi_align.input[2]: Value(batch[start:stop])}
            values = self._walk(region.body, {**outer, **rows})
            return (stop, *(tf.concat([before, values[name].onnx], 0)
                            for before, (name, _, _) in zip(done, region.outputs)))

        with tf.name_scope(_scope_name(roi_align) + "_chunks"):
            final = tf.while_loop(
                lambda start, *_: start < count, chunk,
                [tf.constant(0), *(tf.zeros([0, *shape], dtype) for _, dtype, shape in region.outputs)],
                shape_invariants=[tf.TensorShape([]), *(tf.TensorShape([None, *shape])
                                                        for _, _, shape in region.outputs)])
        return {name: Value(value) for (name, _, _), value in zip(region.outputs, final[1:])}

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


def translate_body(body):
    """For the handler of a node with a body (a GraphProto attribute): a function from the Values of the body's
    inputs to those of its outputs, to call inside the TF control flow that runs it. The body reads the enclosing
    graphs' values by name, as ONNX subgraphs do."""
    return _BODY.get()(body)


def _enclosed(value):
    """A Value of its own by which a body reads `value`, in ONNX's layout, a known value still known: a Const or
    transpose that a handler makes of it lazily belongs to the body's TF graph, and must not be cached where the
    enclosing graph would read it after the loop (TF refuses a tensor of another graph)."""
    return Value.constant(value.const) if value.const is not None else Value(value.onnx)


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
