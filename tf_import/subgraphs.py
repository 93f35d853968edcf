"""Walking an ONNX graph with its bodies (a Loop's), and what a body reads of the graphs around it."""

import onnx


def nodes(graph):
    """The graph's nodes and, after each, those of its bodies (a Loop's)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from nodes(attr.g)


def enclosing_reads(body):
    """The names a body (and the bodies in it) reads from the graphs around it."""
    defined = {v.name for v in [*body.input, *body.initializer]} | {name for n in body.node for name in n.output}
    read = {out.name for out in body.output} | {name for n in body.node for name in n.input if name}
    for node in body.node:
        read.update(name for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPH
                    for name in enclosing_reads(attr.g))
    return read - defined
