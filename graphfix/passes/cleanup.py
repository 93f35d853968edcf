"""cleanup: constant folding, identity and dead-node removal, de-duplicated constants.

The trace leaves hundreds of Constant/Shape/Unsqueeze/Concat nodes whose values are known before any image is
seen; folding them makes the graph smaller and leaves the TensorFlow side fewer ops to translate. Initializers
are the checkpoint's tensors under their detectron2 names (the npz is read from them), so they are never merged or
renamed; only anonymous constants are de-duplicated.
"""

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from graphfix import graph as G

# Never evaluated ahead of time: random ops, and ops whose bodies are graphs.
_NOT_FOLDABLE = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                 "If", "Loop", "Scan", "Constant"}
_MAX_FOLDED_BYTES = 16 << 20  # folding must not blow up the file (e.g. an Expand to a large constant)


def run(model):
    fold_constants(model)
    remove_identities(model.graph)
    remove_dead_nodes(model.graph)
    deduplicate_constants(model.graph)
    return model


def fold_constants(model):
    """Replaces every node whose inputs are all known constants by Constant nodes holding its outputs, in Loop
    bodies too (TorchScript writes each scalar of a scripted loop as Unsqueeze(Constant), and TensorFlow's handlers
    need axes and starts as constants). Returns the number of nodes folded."""
    return _fold_graph(model.graph, list(model.opset_import), {})


def _fold_graph(graph, opsets, outer):
    """fold_constants on `graph`, which may read the enclosing graphs' constants `outer` ({name: ndarray})."""
    known = {**outer, **G.constant_values(graph)}
    nodes, folded = [], 0
    for node in graph.node:
        if node.op_type == "Loop":
            folded += _fold_graph(next(a.g for a in node.attribute if a.name == "body"), opsets, known)
        inputs = [name for name in node.input if name]
        if node.op_type in _NOT_FOLDABLE or not all(name in known for name in inputs):
            nodes.append(node)
            continue
        outputs = _evaluate(node, [known[name] for name in inputs], opsets)
        if outputs is None:
            nodes.append(node)
            continue
        for name, value in zip(node.output, outputs):
            known[name] = value
            nodes.append(G.make_constant(name, value, node_name=f"{node.name or name}/folded"))
        folded += 1
    G.replace_nodes(graph, nodes)
    return folded


def _evaluate(node, values, opsets):
    inputs = [onnx.helper.make_tensor_value_info(f"in{i}", onnx.TensorProto.UNDEFINED, None)
              for i in range(len(values))]
    names = iter(f"in{i}" for i in range(len(values)))
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.input[:] = [next(names) if name else "" for name in node.input]
    outputs = [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None) for name in node.output]
    model = onnx.helper.make_model(onnx.helper.make_graph([copy], "fold", inputs, outputs), opset_imports=opsets)
    results = ReferenceEvaluator(model).run(None, {f"in{i}": v for i, v in enumerate(values)})
    results = [np.asarray(r) for r in results]
    if sum(r.nbytes for r in results) > _MAX_FOLDED_BYTES:
        return None
    return results


def remove_identities(graph):
    """Identity nodes forward a value unchanged: readers read the source instead."""
    graph_outputs = {o.name for o in graph.output}
    makers = G.producers(graph)
    nodes = []
    for node in graph.node:
        if node.op_type != "Identity":
            nodes.append(node)
            continue
        src, dst = node.input[0], node.output[0]
        if dst not in graph_outputs:
            G.rename_uses(graph, {dst: src})
        elif src in makers and src not in graph_outputs:  # keep the output's name: the producer writes it
            makers[src].output[:] = [dst if o == src else o for o in makers[src].output]
            G.rename_uses(graph, {src: dst})
        else:
            nodes.append(node)
    G.replace_nodes(graph, nodes)


def remove_dead_nodes(graph):
    """Drops nodes that no graph output depends on. Initializers stay, read or not: they are the checkpoint the
    npz is derived from (foldbn leaves the unfolded ones unread)."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(G.reads(node))
    G.replace_nodes(graph, reversed(kept))


def deduplicate_constants(graph):
    """Constant nodes with equal values (dtype, shape, bytes) collapse into the first of them."""
    first, renames = {}, {}
    nodes = []
    graph_outputs = {o.name for o in graph.output}
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] not in graph_outputs:
            value = G.constant_node_value(node)
            key = (value.dtype.str, value.shape, value.tobytes())
            if key in first:
                renames[node.output[0]] = first[key]
                continue
            first[key] = node.output[0]
        nodes.append(node)
    G.replace_nodes(graph, nodes)
    G.rename_uses(graph, renames)
