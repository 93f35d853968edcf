"""Small helpers over an onnx GraphProto that the passes share."""

import numpy as np
import onnx
from onnx import numpy_helper


def producers(graph):
    """{value name: node producing it}."""
    return {out: node for node in graph.node for out in node.output}


def consumers(graph):
    """{value name: [nodes reading it]}, subgraph reads (If/Loop bodies using outer values) included."""
    result = {}
    for node in graph.node:
        for name in reads(node):
            result.setdefault(name, []).append(node)
    return result


def reads(node):
    """Names a node reads, those its subgraphs read from outside included."""
    yield from (name for name in node.input if name)
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield from _subgraph_reads(attr.g)


def _subgraph_reads(graph):
    for node in graph.node:
        yield from reads(node)
    for out in graph.output:
        yield out.name


def constant_values(graph):
    """{value name: ndarray} of initializers and Constant-node outputs."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = constant_node_value(node)
    return values


def constant_node_value(node):
    attr = node.attribute[0]
    if attr.name == "value":
        return numpy_helper.to_array(attr.t)
    if attr.name in ("value_float", "value_int"):
        return np.array(onnx.helper.get_attribute_value(attr), np.float32 if attr.name == "value_float" else np.int64)
    if attr.name in ("value_floats", "value_ints"):
        dtype = np.float32 if attr.name == "value_floats" else np.int64
        return np.array(onnx.helper.get_attribute_value(attr), dtype)
    raise NotImplementedError(f"Constant with {attr.name}")


def make_constant(name, value, node_name=None):
    return onnx.helper.make_node(
        "Constant", [], [name], name=node_name or f"{name}/Constant", value=numpy_helper.from_array(np.asarray(value))
    )


def rename_uses(graph, renames):
    """Makes every reader of an `old` name (nodes, subgraphs, graph outputs) read `renames[old]` instead. One walk
    for many renames: a walk per rename made deduplicating a whole model's constants quadratic."""
    for node in graph.node:
        if any(name in renames for name in node.input):
            node.input[:] = [renames.get(name, name) for name in node.input]
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                rename_uses(attr.g, renames)
    for out in graph.output:
        out.name = renames.get(out.name, out.name)


def replace_nodes(graph, nodes):
    """Replaces graph.node by `nodes` (a list of NodeProto)."""
    del graph.node[:]
    graph.node.extend(nodes)


def inline_branch(if_node, branch):
    """Nodes that compute `if_node`'s outputs with `branch` (one of its subgraphs) inlined in the outer graph.
    Values made inside the branch get the If node's name as prefix so they cannot collide with outer names."""
    prefix = if_node.name or if_node.output[0]
    made = {out for node in branch.node for out in node.output}
    rename = {name: f"{prefix}/{name}" for name in made}
    for branch_out, if_out in zip(branch.output, if_node.output):
        if branch_out.name in made:
            rename[branch_out.name] = if_out
    nodes = []
    for node in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = f"{prefix}/{node.name or node.output[0]}"
        copy.input[:] = [rename.get(name, name) for name in node.input]
        copy.output[:] = [rename[name] for name in node.output]
        nodes.append(copy)
    for branch_out, if_out in zip(branch.output, if_node.output):
        if branch_out.name not in made:  # the branch passes an outer value through
            nodes.append(onnx.helper.make_node("Identity", [branch_out.name], [if_out], name=f"{prefix}/passthrough"))
    return nodes


def branch(if_node, name):
    return next(attr.g for attr in if_node.attribute if attr.name == name)
